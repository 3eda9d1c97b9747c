"""One JSON error shape for every 4xx and 5xx, documented in the spec; the one translation
of :class:`backend.errors.ServiceError` (and of database errors) into it.

``{"code": 404, "status": "Not Found", "message": "...", "errors": {...}, "request_id": "..."}``
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
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

from backend.api.openapi import SortedSpec
from backend.errors import ServiceError

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong"})
    errors = ma.fields.Dict(
        metadata={"description": "Field-level errors, by location", "optional": True}
    )
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
                "description": "Pagination metadata, as JSON. Kept for older clients: read "
                "Link and X-Total-Count instead",
                "deprecated": True,
                "content": {"application/json": {"schema": PaginationMetadataSchema}},
            },
            lazy=True,
        )
        # The pagination a generated client can read (README, "Pagination").
        self.spec.components.header(
            "LINK",
            {
                "description": "RFC 8288 links to the first, prev, next and last pages "
                '(e.g. `</patients?page=2&page_size=20>; rel="next"`)',
                "schema": {"type": "string"},
            },
            lazy=True,
        )
        self.spec.components.header(
            "TOTAL_COUNT",
            {
                "description": "How many items the list has across all its pages",
                "schema": {"type": "integer", "minimum": 0},
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
