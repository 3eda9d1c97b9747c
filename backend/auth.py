"""Sign-in: verify the Firebase ID token on each request and map its uid to a user row.

A token of a sign-in that was signed out (``POST /me/sign-out``, see
``backend/models/sign_in.py``) is refused like an invalid one, in the same query that finds
the user.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.exceptions
from firebase_admin import auth as fb_auth
from flask import current_app, g, request
from sqlalchemy import bindparam, exists, false, select
from sqlalchemy.exc import IntegrityError

from backend import db
from backend.clock import now
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.errors import fail
from backend.firebase import firebase_app
from backend.models import SignedOutSession, User

log = logging.getLogger(__name__)
PUBLIC_ENDPOINTS = {
    "health.Health",
    "health.Ready",
    "health.Metrics",
    "api-docs.openapi_json",
    # The reference page and Swagger UI's files hold no data.
    "reference.page",
    "reference.page_slash",
    "reference.init",
    "reference.asset",
    "static",
    # The console's pages and files hold no data; its script calls the API signed in.
    "console.page",
    "console.static",
    "console.config",
    "console.dev_token",
    # The calendar feed signs in by its secret URL (a calendar app sends no ID token).
    "calendar_feed.CalendarFile",
}
_SEEN_EVERY = timedelta(hours=1)


def _unauthorized(message: str) -> None:
    fail(401, message)


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        _unauthorized("Sign in first: send 'Authorization: Bearer <Firebase ID token>'.")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 8192:
        _unauthorized("The Authorization header must be 'Bearer <Firebase ID token>'.")
    return token.strip()


def verify_token(token: str, settings: Settings) -> dict[str, Any]:
    if not settings.emulated_auth and os.environ.get(EMULATOR_HOST_VAR):
        # firebase-admin reads this switch at every call: set after start-up, it would
        # turn off signature checks. Refuse rather than accept unsigned tokens.
        log.error("%s appeared in the environment after start-up", EMULATOR_HOST_VAR)
        fail(503, "Sign-in is temporarily unavailable; try again shortly.")
    try:
        claims: dict[str, Any] = fb_auth.verify_id_token(
            token,
            app=firebase_app(settings),
            clock_skew_seconds=settings.token_clock_skew_s,
        )
    except fb_auth.ExpiredIdTokenError:
        _unauthorized("The ID token has expired; refresh it and try again.")
    except fb_auth.CertificateFetchError:
        log.exception("could not fetch Firebase signing certificates")
        fail(503, "Sign-in is temporarily unavailable; try again shortly.")
    except (fb_auth.InvalidIdTokenError, ValueError) as exc:
        log.info("rejected ID token: %s", exc)
        _unauthorized("The ID token is not valid.")
    except google.auth.exceptions.DefaultCredentialsError:
        # firebase-admin loads the app credential when it builds its auth client.
        log.exception("no usable Firebase credential (FIREBASE_CREDENTIALS or ADC)")
        fail(503, "Sign-in is temporarily unavailable; try again shortly.")
    if settings.emulated_auth:
        # The emulator mode skips the signature and the expiry check; keep the expiry.
        exp = claims.get("exp")
        skew = settings.token_clock_skew_s
        if not isinstance(exp, int | float) or datetime.fromtimestamp(exp, UTC) < now() - (
            timedelta(seconds=skew)
        ):
            _unauthorized("The ID token has expired; refresh it and try again.")
    return claims


def _auth_time(claims: dict[str, Any]) -> int | None:
    """The sign-in's instant, the same in every token of that sign-in (Firebase sets it)."""
    value = claims.get("auth_time")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Built once: every request asks (building the statement cost as much as running it).
_BY_UID = select(User, false()).where(User.firebase_uid == bindparam("uid"))
_BY_UID_AND_SIGN_IN = select(
    User,
    exists().where(
        SignedOutSession.user_id == User.id, SignedOutSession.auth_time == bindparam("auth_time")
    ),
).where(User.firebase_uid == bindparam("uid"))


def _find_user(uid: str, auth_time: int | None) -> User | None:
    """The user of this uid; a 401 if this token's sign-in was signed out."""
    if auth_time is None:
        row = db.session.execute(_BY_UID, {"uid": uid}).first()
    else:
        row = db.session.execute(_BY_UID_AND_SIGN_IN, {"uid": uid, "auth_time": auth_time}).first()
    if row is None:
        return None
    if row[1]:
        _unauthorized("This sign-in was signed out; sign in again.")
    user: User = row[0]
    return user


def _provision(claims: dict[str, Any]) -> User:
    uid = str(claims["uid"])
    user = _find_user(uid, _auth_time(claims))
    if user is None:
        user = User(
            firebase_uid=uid,
            email=_short(claims.get("email"), 320),
            display_name=_short(claims.get("name"), 200),
            last_seen_at=now(),
        )
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:  # the same person's first two calls raced
            db.session.rollback()
            user = db.session.scalars(select(User).where(User.firebase_uid == uid)).one()
    elif user.last_seen_at is None or now() - user.last_seen_at > _SEEN_EVERY:
        user.last_seen_at = now()
        if user.email is None and claims.get("email"):
            user.email = _short(claims.get("email"), 320)
        db.session.commit()
    return user


def _short(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value else None


def authenticate() -> None:
    """before_request hook: every API route but health and the spec needs a signed-in user."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    if request.method == "OPTIONS":
        return
    settings: Settings = current_app.config["SETTINGS"]
    claims = verify_token(bearer_token(), settings)
    g.current_user = _provision(claims)
    g.auth_time = _auth_time(claims)


def current_user() -> User:
    user: User = g.current_user
    return user


def current_auth_time() -> int | None:
    """When the signed-in person's current sign-in happened (their token's ``auth_time``)."""
    auth_time: int | None = g.get("auth_time")
    return auth_time
