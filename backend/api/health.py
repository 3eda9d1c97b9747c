"""The service's own health, without sign-in: liveness, readiness and Prometheus metrics.

- ``/healthz``: the process is up and can run a query (restart it when this fails);
- ``/readyz``: the database is reachable *and* its schema is at this code's migrations'
  head (send it traffic only when this answers 200; the 503 says which is missing);
- ``/metrics``: Prometheus text, only to clients in ``METRICS_ALLOW`` (default this host)
  and never through a proxy; everyone else gets the same 404 as a path that does not exist.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from sqlalchemy import text
from werkzeug.exceptions import NotFound

from backend import db, metrics, readiness
from backend.api.blueprint import Blueprint
from backend.api.common import error_responses
from backend.errors import fail

blp = Blueprint("health", __name__, url_prefix="", description="Service health")

# A proxy in front (nginx, a load balancer) connects from an address that may well be in
# the allow-list (loopback); what it forwards carries one of these.
_PROXIED = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True)
    database = ma.fields.String(required=True)


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ready"})
    database = ma.fields.String(required=True, metadata={"example": "postgresql"})
    revision = ma.fields.String(
        required=True, metadata={"description": "The schema's migration revision (the head)"}
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Is the service up and its database reachable"""
        db.session.execute(text("SELECT 1"))
        return {"status": "ok", "database": db.get_engine().dialect.name}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.doc(security=[])
    @blp.response(200, ReadySchema)
    @error_responses(blp, 503)
    def get(self) -> dict[str, str]:
        """Is the database reachable and its schema at the migrations' head"""
        state = readiness.check(db.get_engine())
        if state.problem:
            fail(503, state.problem, retry_after=5)
        return {"status": "ready", "database": state.database, "revision": ",".join(state.current)}


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(security=[])
    @blp.response(
        200,
        {"type": "string"},
        content_type="text/plain",
        description="Prometheus text exposition format (version 0.0.4)",
    )
    @error_responses(blp, 404)
    def get(self) -> Response:
        """Prometheus metrics of the API (allowed client networks only)"""
        allowed = current_app.config["SETTINGS"].metrics_allow
        proxied = any(name in request.headers for name in _PROXIED)
        if proxied or not metrics.client_allowed(request.remote_addr, allowed):
            fail(404, NotFound.description or "Not Found")
        return Response(metrics.api_exposition(), content_type=metrics.CONTENT_TYPE)
