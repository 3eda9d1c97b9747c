"""``/me/calendar-feed``: your private calendar feed; ``/calendar/{secret}.ics``: the feed.

The feed URL is a secret (anyone holding it reads the calendar without signing in, as a
calendar app must), shown only when the feed is made or rotated. The ``.ics`` route answers
RFC 5545 iCalendar, kept by no cache (``no-store``, set for every signed-in or
secret-URL answer in backend/app.py), with an ETag; an unknown, rotated or
revoked secret is the same 404. The rules of what a feed holds are in
backend/services/calendar_feeds.py.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, request, url_for
from flask.views import MethodView

from backend import db
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Instant, error_responses
from backend.auth import current_user
from backend.errors import fail
from backend.models import CalendarFeed
from backend.services import calendar_feeds as service

blp = Blueprint("calendar_feed", __name__, description="Calendar feed")

ICS_TYPE = "text/calendar; charset=utf-8"
NOT_FOUND = "No such calendar feed."
# A secret is token_urlsafe(32): 43 characters of A-Z a-z 0-9 _ -. Anything else is
# unknown without a database look-up.
_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_SECRET = 64


class FeedSettingsSchema(BaseSchema):
    show_details = ma.fields.Boolean(
        metadata={
            "description": "Titles, places and notes of appointments and medicine names; "
            "default false: lock-screen titles such as 'Appointment'"
        }
    )
    include_doses = ma.fields.Boolean(
        metadata={"description": "Dose times of the medicines you may see; default false"}
    )


class FeedSchema(BaseSchema):
    show_details = ma.fields.Boolean(required=True, dump_only=True)
    include_doses = ma.fields.Boolean(required=True, dump_only=True)
    created_at = Instant(required=True, dump_only=True)
    rotated_at = Instant(
        required=True, dump_only=True, metadata={"description": "When the URL was last made"}
    )


class NewFeedSchema(FeedSchema):
    url = ma.fields.String(
        required=True,
        dump_only=True,
        metadata={
            "description": "The feed's secret URL, shown this once: subscribe to it in a "
            "calendar app; anyone holding it can read the calendar"
        },
    )


def _own_feed() -> CalendarFeed:
    feed = service.of_user(db.session(), current_user())
    if feed is None:
        fail(404, "You have no calendar feed; create one with POST.")
    return feed


def _with_url(feed: CalendarFeed, secret: str) -> dict[str, Any]:
    url = url_for("calendar_feed.CalendarFile", secret=secret, _external=True)
    fields = ("show_details", "include_doses", "created_at", "rotated_at")
    return {**{name: getattr(feed, name) for name in fields}, "url": url}


@blp.route("/me/calendar-feed")
class MyCalendarFeed(MethodView):
    @blp.response(200, FeedSchema)
    @error_responses(blp, 404)
    def get(self) -> CalendarFeed:
        """Your calendar feed's settings (its URL is shown only when made or rotated)"""
        return _own_feed()

    @blp.arguments(FeedSettingsSchema, required=False)
    @blp.response(201, NewFeedSchema)
    @error_responses(blp, 409)
    def post(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Create your private calendar feed; the answer holds its secret URL, once"""
        feed, secret = service.create(db.session(), current_user(), settings)
        return _with_url(feed, secret)

    @blp.arguments(FeedSettingsSchema)
    @blp.response(200, FeedSchema)
    @error_responses(blp, 404)
    def patch(self, changes: dict[str, Any]) -> CalendarFeed:
        """Change what your feed shows; its URL stays the same"""
        feed = _own_feed()
        service.update(db.session(), feed, changes)
        return feed

    @blp.response(204)
    @error_responses(blp, 404)
    def delete(self) -> None:
        """Revoke your feed: its URL stops working at once"""
        service.revoke(db.session(), _own_feed())


@blp.route("/me/calendar-feed/rotate")
class RotateCalendarFeed(MethodView):
    @blp.response(200, NewFeedSchema)
    @error_responses(blp, 404)
    def post(self) -> dict[str, Any]:
        """A new secret URL for your feed; the old one stops working at once"""
        feed = _own_feed()
        secret = service.rotate(db.session(), feed)
        return _with_url(feed, secret)


@blp.route("/calendar/<string:secret>.ics")
class CalendarFile(MethodView):
    @blp.doc(
        security=[],
        responses={
            200: {
                "description": "RFC 5545 iCalendar",
                "content": {"text/calendar": {"schema": {"type": "string"}}},
                "headers": {"ETag": {"schema": {"type": "string"}}},
            },
            304: {"description": "Unchanged since the ETag in If-None-Match"},
        },
    )
    @error_responses(blp, 404)
    def get(self, secret: str) -> Response:
        """The calendar behind a feed URL (no sign-in: the URL is the secret)"""
        feed = _feed_of(secret)
        body = service.render(db.session(), feed)
        response = Response(body, status=200, content_type=ICS_TYPE)
        response.add_etag()
        etag, _ = response.get_etag()
        if etag is not None and request.if_none_match.contains(etag):
            return Response(status=304, headers={"ETag": response.headers["ETag"]})
        return response


def _feed_of(secret: str) -> CalendarFeed:
    if len(secret) > _MAX_SECRET or not set(secret) <= _SECRET_CHARS:
        fail(404, NOT_FOUND)
    feed = service.by_secret(db.session(), secret)
    if feed is None:
        fail(404, NOT_FOUND)
    return feed
