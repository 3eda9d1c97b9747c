"""One JSON error shape for every 4xx and 5xx, documented in the spec.

``{"code": 404, "status": "Not Found", "message": "...", "errors": {...}, "request_id": "..."}``
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, g
from flask_smorest import Api
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import (
    Conflict,
    HTTPException,
    InternalServerError,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong"})
    errors = ma.fields.Dict(metadata={"description": "Field-level errors, by location"})
    request_id = ma.fields.String(
        required=True, metadata={"description": "Quote this id when reporting a problem"}
    )


def error_payload(code: int, name: str, message: str, errors: Any = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": code,
        "status": name,
        "message": message,
        "request_id": g.get("request_id", "-"),
    }
    if errors:
        payload["errors"] = errors
    return payload


class CareApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:  # type: ignore[override]
        code = error.code or 500
        headers: dict[str, str] = {}
        message = error.description or error.name
        errors = None
        data = getattr(error, "data", None) or {}
        if "message" in data:
            message = data["message"]
        if "errors" in data:
            errors = data["errors"]
        elif "messages" in data:
            errors = data["messages"]
            message = "The request has invalid fields; see errors."
        if data.get("headers"):
            headers = dict(data["headers"])
        if isinstance(error, InternalServerError):
            original = getattr(error, "original_exception", None)
            log.error(
                "unhandled error request_id=%s", g.get("request_id", "-"), exc_info=original
            )
            message = "Something went wrong on our side. Quote the request id if you report it."
        if code == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="care-companion"')
        return error_payload(code, error.name, message, errors), code, headers


def register_database_errors(app: Flask, api: CareApi) -> None:
    """Database errors become the same shape instead of a 500 page."""

    def integrity(exc: IntegrityError) -> Any:
        log.info("integrity error request_id=%s: %s", g.get("request_id", "-"), exc.orig)
        return api.handle_http_exception(
            Conflict("This conflicts with data that already exists.")
        )

    def operational(exc: OperationalError) -> Any:
        log.error("database unavailable request_id=%s: %s", g.get("request_id", "-"), exc.orig)
        error = ServiceUnavailable("The database is busy or unavailable; try again shortly.")
        payload, code, headers = api.handle_http_exception(error)
        headers["Retry-After"] = "5"
        return payload, code, headers

    app.register_error_handler(IntegrityError, integrity)
    app.register_error_handler(OperationalError, operational)


def _schema_name(schema: type[ma.Schema] | ma.Schema) -> str:
    # A partial (PATCH) instance gets its own component name, e.g. "MeUpdate".
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Update"
    return name


def spec_plugin() -> MarshmallowPlugin:
    return MarshmallowPlugin(schema_name_resolver=_schema_name)
