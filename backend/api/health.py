"""Liveness: answers without sign-in, checks the database."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from backend import db

blp = Blueprint("health", __name__, url_prefix="/healthz", description="Service health")


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True)
    database = ma.fields.String(required=True)


@blp.route("")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Is the service up and its database reachable"""
        db.session.execute(text("SELECT 1"))
        return {"status": "ok", "database": db.get_engine().dialect.name}
