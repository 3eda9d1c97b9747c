"""Pieces every resource module uses: the base schema, field validators, pagination.

Conventions for a route (README, "Writing a route"; checked by tests/test_spec_shape.py):

- Schemas derive from :class:`BaseSchema`; one schema per resource with server-set fields
  ``dump_only`` -- the spec makes ``X`` (sent) and ``XInput``/``XUpdate`` (received) of it
  (backend/api/openapi.py). A PATCH takes ``XSchema(partial=True)``.
- A response sends every field (``null`` when empty); a field sent only sometimes is wrapped
  in :func:`Optional` (or ``metadata={"optional": True}``) and says when in its description;
  a part kept as the client sent it is an :class:`EchoSchema`.
- A fixed value set is ``validate=Choice("Name", VALUES)`` (:class:`Choice`, :func:`Enum`),
  the same name wherever the set appears. No free-form ``Dict()``/``Raw()``: a ``Nested``
  schema, :class:`Scalar` or :class:`Union`.
- A list that can grow is ``@blp.paginate(...)`` (``Link`` and ``X-Total-Count`` are added by
  :func:`add_page_links`); errors come from ``fail()`` and are listed with
  :func:`error_responses`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import available_timezones

import marshmallow as ma
from flask import Response, request
from flask_smorest import Page
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from werkzeug.routing import IntegerConverter, Map

from backend import db
from backend.api.blueprint import Blueprint
from backend.clock import now
from backend.models.profile import NEED_FLAGS, SUPPORTED_LANGUAGES

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


MAX_ID = 2**31 - 1  # ids are 32-bit integer columns


class IdConverter(IntegerConverter):
    """``<int:...>`` in our routes. Ids are 32-bit like their columns, so a larger number is
    a 404 from routing rather than an overflow in the database driver (a 500)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def RecordId(**kwargs: Any) -> ma.fields.Integer:
    """A record id in a body or query: out of range is a 422, not a database overflow."""
    return ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_ID), **kwargs)


def error_responses(blp: Blueprint, *codes: int) -> Callable[[F], F]:
    """Documents the errors a view answers with, each in the one Error shape.

    401 (sign-in), 400/415 (body not JSON) and 422 (invalid arguments) are documented for
    every operation that can give them; list here what the view itself aborts with.
    """

    def decorate(view: F) -> F:
        for code in sorted(codes, reverse=True):
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorate


class Choice(ma.validate.OneOf):
    """A fixed value set with a name: one enum component in the spec, referenced wherever the
    set appears (``validate=Choice("WorkItemKind", WORK_ITEM_KINDS)``). Give a set one name
    and reuse it; the same name with other values fails when the spec is built."""

    def __init__(self, name: str, choices: Iterable[Any], **kwargs: Any) -> None:
        super().__init__(tuple(choices), **kwargs)
        self.name = name


def Enum(name: str, choices: Iterable[Any], **kwargs: Any) -> ma.fields.String:
    """A string field holding one of a named value set (see :class:`Choice`)."""
    return ma.fields.String(validate=Choice(name, choices), **kwargs)


class Scalar(ma.fields.Field):
    """One JSON number, string or boolean (an answer, a rule's threshold): a union type in the
    spec, so generated clients have ``float | str | bool`` rather than "any"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", ["number", "string", "boolean"])
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool | int | float | str):
            raise ma.ValidationError("A number, a string or true/false.")
        return value


class Union(ma.fields.Field):
    """One of several shapes (a check-in answer: a number, a code, a list of codes, a
    quantity...): ``oneOf`` in the spec, a union type in generated clients. The value passes
    through as sent; the domain decides which shape fits (e.g. by the item's type)."""

    def __init__(self, *options: ma.fields.Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = options

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str | list | dict):
            return value
        raise ma.ValidationError("Not a JSON value.")


def Optional(field: ma.fields.Field) -> ma.fields.Field:
    """A response field sent only sometimes (the spec does not list it as required)."""
    field.metadata = {**field.metadata, "optional": True}
    return field


class Pattern(ma.validate.Regexp):
    """A regexp the whole value must match, as the spec's ``pattern`` says. Python's ``$``
    also matches before a final newline, so ``Regexp`` lets "name\\n" through."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


def _not_json_type(field: ma.fields.Field, value: Any) -> str | None:
    """What the spec's JSON Schema type refuses but marshmallow would coerce ("5", 5.5, "yes")."""
    if value is None:
        return None  # allow_none decides
    if isinstance(field, ma.fields.Boolean):
        return None if isinstance(value, bool) else "Not a valid boolean."
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(field, ma.fields.Integer):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if number and whole else "Not a valid integer."
    if isinstance(field, ma.fields.Number):
        return None if number else "Not a valid number."
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class BaseSchema(ma.Schema):
    """Unknown fields are an error, never silently dropped; JSON types are not coerced."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _json_types(self, data: Any, **_: Any) -> Any:
        # A JSON body arrives as a dict. Query strings arrive as webargs' MultiDictProxy, not a
        # dict, and stay as they are: there "5" and "true" are how numbers and flags look.
        if not isinstance(data, dict):
            return data
        errors = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key in data and (message := _not_json_type(field, data[key])):
                errors[key] = [message]
            elif key in data and _has_nul(data[key]):
                # PostgreSQL text cannot hold NUL: refuse it here, naming the field.
                errors[key] = ["Text may not contain NUL characters."]
        if errors:
            raise ma.ValidationError(errors)
        return data


class EchoSchema(BaseSchema):
    """A part of a record kept as the client sent it (a care plan's goals, a reminder chain's
    steps) and sent back the same way: in a response only what a request must give, or gets
    by default, is always there (the spec's ``required``), and a field whose metadata says
    ``"sent": True`` (an id the server gives); the rest is there if it was given.
    Any other response schema sends every field (see backend/api/openapi.py)."""


@cache
def _zones() -> frozenset[str]:
    # Not the host's own ("localtime") nor tzdata's placeholders ("Factory", "posixrules"):
    # names a person's zone can be, the same on every machine.
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def validate_time_zone(value: str) -> None:
    if value not in _zones():
        raise ma.ValidationError("Not an IANA time zone name (e.g. 'America/New_York').")


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# What validate_language accepts, as one pattern for the spec (JSON Schema has no flags).
_PRIMARY = "|".join(_any_case(lang) for lang in SUPPORTED_LANGUAGES)
LANGUAGE_PATTERN = f"^(?:{_PRIMARY})(?:-[A-Za-z0-9]{{2,8}}){{0,3}}$"


def validate_language(value: str) -> None:
    if not _BCP47.fullmatch(value):
        raise ma.ValidationError("Not a BCP 47 language tag (e.g. 'es' or 'es-MX').")
    if not re.fullmatch(LANGUAGE_PATTERN, value):
        raise ma.ValidationError(f"Supported languages: {', '.join(SUPPORTED_LANGUAGES)}.")


def Language(**kwargs: Any) -> ma.fields.String:
    """A BCP 47 tag whose language we support, e.g. ``es-MX``."""
    kwargs.setdefault("metadata", {})
    kwargs["metadata"].update(pattern=LANGUAGE_PATTERN, example="es-MX")
    return ma.fields.String(validate=validate_language, **kwargs)


_HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class _LocalTime(ma.fields.Time):
    # strptime alone would also take "8:5" or non-ASCII digits: accept what the spec says.
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str) or re.fullmatch(_HH_MM, value) is None:
            raise self.make_error("invalid", obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs)


def LocalTime(**kwargs: Any) -> ma.fields.Time:
    """A wall-clock time of day, ``HH:MM``."""
    kwargs.setdefault("metadata", {})
    kwargs["metadata"].update(example="08:00", pattern=_HH_MM)
    return _LocalTime(format="%H:%M", **kwargs)


# Instants outside these years are typing mistakes, and near year 1 or 9999 date arithmetic
# (a window, an answer deadline, a zone conversion) overflows: refused at the edge, once.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> None:
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise ma.ValidationError("Between the years 1900 and 2199; check the year.")


def _plausible_day(value: date) -> None:
    if not EARLIEST_INSTANT.year <= value.year < LATEST_INSTANT.year:
        raise ma.ValidationError("Between the years 1900 and 2199; check the year.")


def Day(**kwargs: Any) -> ma.fields.Date:
    """An ISO 8601 calendar date in a plausible year (as :func:`Instant`)."""
    given = kwargs.pop("validate", None)
    extra = list(given) if isinstance(given, list | tuple) else [given] if given else []
    return ma.fields.Date(validate=[_plausible_day, *extra], **kwargs)


def _not_in_the_future(value: date) -> None:
    if value > now().date() + timedelta(days=1):  # a day of slack for the zones ahead of UTC
        raise ma.ValidationError("Not in the future.")


def BirthDate(**kwargs: Any) -> ma.fields.Date:
    """A birth date: a plausible year, and not in the future."""
    return Day(validate=_not_in_the_future, **kwargs)


def Instant(**kwargs: Any) -> ma.fields.AwareDateTime:
    """An RFC 3339 instant with an offset (naive input is refused) in a plausible year."""
    given = kwargs.pop("validate", None)
    extra = list(given) if isinstance(given, list | tuple) else [given] if given else []
    return ma.fields.AwareDateTime(format="iso", validate=[_plausible, *extra], **kwargs)


def NeedFlags(**kwargs: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=Choice("NeedFlag", NEED_FLAGS)),
        validate=ma.validate.Length(max=len(NEED_FLAGS)),
        **kwargs,
    )


# A name, title or short reason: one line, no leading or trailing space, and none of the
# characters that let a text pose as something else on a screen or in a push -- C0/C1
# controls (newlines included) and the bidirectional embeddings, overrides and isolates
# ("Nurse\u202e..."). The same class means the same in Python and in the spec's ECMA regex.
_UNSAFE = "\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
PLAIN_TEXT = f"^[^\\s{_UNSAFE}](?:[^{_UNSAFE}]*[^\\s{_UNSAFE}])?$"


def trimmed(max_len: int, min_len: int = 1) -> list[ma.validate.Validator]:
    # A list, not validate.And: the spec shows the length and pattern only of a list.
    return [
        ma.validate.Length(min=min_len, max=max_len),
        Pattern(
            PLAIN_TEXT,
            error="One line of text: no leading or trailing spaces, no control or "
            "direction-override characters.",
        ),
    ]


class ProfileFields(BaseSchema):
    language = Language()
    time_zone = ma.fields.String(
        validate=validate_time_zone, metadata={"example": "America/New_York"}
    )
    wake_time = LocalTime()
    breakfast_time = LocalTime()
    lunch_time = LocalTime()
    dinner_time = LocalTime()
    bed_time = LocalTime()
    communication_needs = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    need_flags = NeedFlags()


def add_page_links(response: Response) -> Response:
    """Every paginated list answers with RFC 8288 ``Link`` (first, prev, next, last) and
    ``X-Total-Count``, derived from flask-smorest's X-Pagination so every ``@blp.paginate``
    list gets them; generated clients read headers, not JSON inside a header."""
    raw = response.headers.get("X-Pagination")
    if raw is None:
        return response
    meta = json.loads(raw)
    response.headers["X-Total-Count"] = str(meta["total"])
    size = (
        request.args.get("page_size", type=int)
        or Blueprint.DEFAULT_PAGINATION_PARAMETERS["page_size"]
    )
    pages = {
        "first": meta.get("first_page"),
        "prev": meta.get("previous_page"),
        "next": meta.get("next_page"),
        "last": meta.get("last_page"),
    }
    links = []
    for rel, page in pages.items():
        if page is not None:
            query = urlencode({**request.args.to_dict(), "page": page, "page_size": size})
            links.append(f'<{request.path}?{query}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return response


class PaginatedSelect(Page):
    """Pages an SQLAlchemy ``select`` with COUNT + OFFSET/LIMIT (flask-smorest pager)."""

    def paged(self) -> Select[Any]:
        p: PaginationParameters = self.page_params
        stmt: Select[Any] = self.collection
        if p.first_item >= (p.item_count or 0):
            # Past the last page. A huge page number would also overflow the OFFSET (a 500).
            return stmt.limit(0)
        return stmt.offset(p.first_item).limit(p.page_size)

    @property
    def items(self) -> list[Any]:
        return list(db.session.scalars(self.paged()))

    @property
    def item_count(self) -> int:
        stmt: Select[Any] = self.collection
        count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        return int(count or 0)
