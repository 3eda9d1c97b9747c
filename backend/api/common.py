"""Pieces every resource module uses: the base schema, field validators, pagination."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from typing import Any, TypeVar
from zoneinfo import available_timezones

import marshmallow as ma
from flask_smorest import Blueprint, Page
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from werkzeug.routing import IntegerConverter, Map

from backend import db
from backend.models.profile import NEED_FLAGS, SUPPORTED_LANGUAGES

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


class IdConverter(IntegerConverter):
    """``<int:...>`` in our routes. Ids are 32-bit like their columns, so a larger number is
    a 404 from routing rather than an overflow in the database driver (a 500)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


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


class BaseSchema(ma.Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = ma.RAISE


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _zones():
        raise ma.ValidationError("Not an IANA time zone name (e.g. 'America/New_York').")


def validate_language(value: str) -> None:
    if not _BCP47.match(value):
        raise ma.ValidationError("Not a BCP 47 language tag (e.g. 'es' or 'es-MX').")
    if value.split("-")[0].lower() not in SUPPORTED_LANGUAGES:
        raise ma.ValidationError(f"Supported languages: {', '.join(SUPPORTED_LANGUAGES)}.")


def LocalTime(**kwargs: Any) -> ma.fields.Time:
    """A wall-clock time of day, ``HH:MM``."""
    kwargs.setdefault("metadata", {})
    kwargs["metadata"].setdefault("example", "08:00")
    return ma.fields.Time(format="%H:%M", **kwargs)


def Instant(**kwargs: Any) -> ma.fields.AwareDateTime:
    """An RFC 3339 instant with an offset (naive input is refused)."""
    return ma.fields.AwareDateTime(format="iso", **kwargs)


def NeedFlags(**kwargs: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(NEED_FLAGS)),
        validate=ma.validate.Length(max=len(NEED_FLAGS)),
        **kwargs,
    )


def trimmed(max_len: int, min_len: int = 1) -> ma.validate.Validator:
    return ma.validate.And(
        ma.validate.Length(min=min_len, max=max_len),
        ma.validate.Regexp(r"^\S(.*\S)?$", flags=re.S, error="No leading or trailing spaces."),
    )


class ProfileFields(BaseSchema):
    language = ma.fields.String(validate=validate_language, metadata={"example": "es-MX"})
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


class PaginatedSelect(Page):
    """Pages an SQLAlchemy ``select`` with COUNT + OFFSET/LIMIT (flask-smorest pager)."""

    def paged(self) -> Select[Any]:
        p: PaginationParameters = self.page_params
        stmt: Select[Any] = self.collection
        return stmt.offset(p.first_item).limit(p.page_size)

    @property
    def items(self) -> list[Any]:
        return list(db.session.scalars(self.paged()))

    @property
    def item_count(self) -> int:
        stmt: Select[Any] = self.collection
        count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        return int(count or 0)
