"""One error type for "this request breaks a rule", raised anywhere below the views.

Services, the access policy and views raise :class:`ServiceError` (or call :func:`fail`);
the app's one error handler (``backend.api.errors``) turns it into the error shape with its
status. Nothing here imports Flask, so the services and the worker can raise it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

INVALID = "The request has invalid fields; see errors."


class ServiceError(Exception):
    """A rule the request breaks: an HTTP status and a message; optionally the input it is
    about (``field``, a dotted path in the JSON body such as ``timing.repeat.periodUnit``) or
    the field errors by location (``errors``), and when to try again (``retry_after``, s)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        errors: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.errors = errors
        self.retry_after = retry_after
        self.headers = headers

    def body_errors(self) -> dict[str, Any] | None:
        """The ``errors`` member of the error body: by location, then field."""
        if self.errors is not None:
            return dict(self.errors)
        if self.field is None:
            return None
        first, _, rest = self.field.partition(".")
        return {"json": {first: {rest: [self.message]} if rest else [self.message]}}

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers or {})
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def fail(
    status: int,
    message: str,
    *,
    field: str | None = None,
    errors: Mapping[str, Any] | None = None,
    retry_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> NoReturn:
    """Stop the request with our error shape (raises :class:`ServiceError`)."""
    raise ServiceError(
        status, message, field=field, errors=errors, retry_after=retry_after, headers=headers
    )


def invalid(json_errors: Mapping[str, Any]) -> ServiceError:
    """A 422 for invalid fields of the JSON body, ``{field: [messages]}``."""
    return ServiceError(422, INVALID, errors={"json": dict(json_errors)})
