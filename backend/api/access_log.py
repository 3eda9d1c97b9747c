"""``/patients/{id}/access-log``: who looked at or changed the patient's data."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import Action, authorize
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Instant, PaginatedSelect, error_responses
from backend.auth import current_user
from backend.models import AccessLogEntry, User

blp = Blueprint("access_log", __name__, description="Access log")


class AccessLogSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    at = Instant(dump_only=True)
    actor_user_id = ma.fields.Integer(dump_only=True)
    actor_name = ma.fields.String(dump_only=True, allow_none=True)
    actor_role = ma.fields.String(dump_only=True)
    action = ma.fields.String(dump_only=True)
    method = ma.fields.String(dump_only=True)
    path = ma.fields.String(dump_only=True)
    status = ma.fields.Integer(dump_only=True)
    request_id = ma.fields.String(dump_only=True)


class AccessLogPage(PaginatedSelect):
    """Pages (entry, actor) rows; each entry carries its actor's name for the schema."""

    @property
    def items(self) -> list[Any]:
        entries = []
        for entry, actor in db.session.execute(self.paged()):
            entry.actor_name = actor.name
            entries.append(entry)
        return entries


@blp.route("/patients/<int:patient_id>/access-log")
class AccessLog(MethodView):
    @blp.response(200, AccessLogSchema(many=True))
    @blp.paginate(AccessLogPage)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> Any:
        """Who read or changed this patient's data, newest first"""
        authorize(current_user(), patient_id, Action.VIEW_ACCESS_LOG)
        return (
            select(AccessLogEntry, User)
            .join(User, User.id == AccessLogEntry.actor_user_id)
            .where(AccessLogEntry.patient_id == patient_id)
            .order_by(AccessLogEntry.at.desc(), AccessLogEntry.id.desc())
        )
