"""One JSON error shape for every 4xx and 5xx, documented in the spec; the one translation
of :class:`backend.errors.ServiceError` (and of database errors) into it.

``{"code": 404, "status": "Not Found", "message": "...", "errors": {...}, "request_id": "..."}``
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, g
from flask_smorest import Api
from flask_smorest.pagination import PaginationMetadataSchema
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import (
    Conflict,
    HTTPException,
    InternalServerError,
    ServiceUnavailable,
    default_exceptions,
)

from backend.errors import ServiceError

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

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        self.spec.__class__ = SortedSpec

    def _register_pagination_header(self) -> None:
        # X-Pagination carries JSON. OpenAPI describes such a header with `content`; a bare
        # object `schema` would mean the "key,value,key,value" style, which it is not.
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata, as JSON",
                "content": {"application/json": {"schema": PaginationMetadataSchema}},
            },
            lazy=True,
        )

    def handle_http_exception(self, error: HTTPException) -> Any:
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
            log.error("unhandled error request_id=%s", g.get("request_id", "-"), exc_info=original)
            message = "Something went wrong on our side. Quote the request id if you report it."
        if code == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="care-companion"')
        return error_payload(code, error.name, message, errors), code, headers


def register_error_handlers(app: Flask, api: CareApi) -> None:
    """A broken rule (:class:`ServiceError`) and database errors become the one shape
    instead of a 500 page: every error leaves through ``handle_http_exception``."""

    def broken_rule(exc: ServiceError) -> Any:
        error = default_exceptions.get(exc.status, HTTPException)(exc.message)
        if error.code is None:  # a status werkzeug has no class for
            error.code = exc.status
        error.data = {"message": exc.message, "headers": exc.response_headers()}  # type: ignore[attr-defined]
        if (errors := exc.body_errors()) is not None:
            error.data["errors"] = errors  # type: ignore[attr-defined]
        return api.handle_http_exception(error)

    def integrity(exc: IntegrityError) -> Any:
        log.info("integrity error request_id=%s: %s", g.get("request_id", "-"), exc.orig)
        return api.handle_http_exception(Conflict("This conflicts with data that already exists."))

    def operational(exc: OperationalError) -> Any:
        log.error("database unavailable request_id=%s: %s", g.get("request_id", "-"), exc.orig)
        error = ServiceUnavailable("The database is busy or unavailable; try again shortly.")
        payload, code, headers = api.handle_http_exception(error)
        headers["Retry-After"] = "5"
        return payload, code, headers

    app.register_error_handler(ServiceError, broken_rule)
    app.register_error_handler(IntegrityError, integrity)
    app.register_error_handler(OperationalError, operational)


class SortedSpec(APISpec):
    """Keys in sorted order: the committed api_spec/openapi.json changes only where the API
    does, never because a decorator or a blueprint moved."""

    def to_dict(self) -> dict[str, Any]:
        ordered: dict[str, Any] = _sorted(super().to_dict())
        return ordered


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class CommonErrorsPlugin(BasePlugin):
    """Documents the errors any operation can answer with, whatever its view does:
    401 wherever sign-in is needed, 400 and 415 wherever a JSON body is read; and gives every
    operation its operationId."""

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        rule: Any = None,
        **_: Any,
    ) -> None:
        # A stable operationId from the view, not the path: the method and the MethodView's
        # name ("getMedicationById"), so generated clients keep their names when a path moves.
        view = rule.endpoint.rsplit(".", 1)[-1] if rule is not None else None
        for method, operation in (operations or {}).items():
            if view is not None:
                operation.setdefault("operationId", f"{method}{view}")
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            if operation.get("security") != []:
                responses.setdefault(401, "UNAUTHORIZED")
            if "requestBody" in operation:
                responses.setdefault(400, "BAD_REQUEST")
                responses.setdefault(415, "UNSUPPORTED_MEDIA_TYPE")


def _schema_name(schema: type[ma.Schema] | ma.Schema) -> str:
    # A partial (PATCH) instance gets its own component name, e.g. "MeUpdate".
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial and not name.endswith("Update"):
        name += "Update"
    return name


def spec_plugins() -> dict[str, Any]:
    """The ``spec_kwargs`` for :class:`CareApi`."""
    return {
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=_schema_name),
        "extra_plugins": [CommonErrorsPlugin()],
    }
