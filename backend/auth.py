"""Sign-in: verify the Firebase ID token on each request and map its uid to a user row.

A token of a sign-in that was signed out (``POST /me/sign-out``, see
``backend/models/sign_in.py``) is refused like an invalid one, in the same query that finds
the user.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.exceptions
from firebase_admin import auth as fb_auth
from flask import current_app, g, request
from sqlalchemy import bindparam, false, select
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
# The hottest reads find the signed-in user in their own first statement (the today view's
# one read, ``backend/services/today_cache``): for them the hook only verifies the token,
# once it knows the uid's user id, and the view hands the row it read to :func:`signed_in`.
FINDS_OWN_USER = {"today.Today"}
# Firebase uid -> user id, learnt at each sign-in: a user's id never changes. Bounded so a
# flood of new accounts cannot grow it without end (it is only a shortcut).
_KNOWN_IDS: dict[str, int] = {}
_KNOWN_AT_MOST = 100_000
# An app's verified ID tokens: the token's SHA-256 -> (its claims, the instant it expires,
# with the clock skew allowed). Verifying cost a today view a twentieth of its CPU (two
# base64 and JSON decodes; and an RSA signature check in production). Keyed by digest, not
# by the 0.5-1 KB token; at most ~25 MB per process (~2 KB of claims an entry), then emptied.
Verified = dict[bytes, tuple[dict[str, Any], datetime]]
_VERIFIED_AT_MOST = 10_000


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
    """The claims of a valid ID token; a 401 (or a 503 when sign-in cannot work) otherwise.

    A phone sends the same token with every call for up to an hour, so the app keeps a
    verified token's claims until it expires (:data:`Verified`): verifying it again would
    give the same answer. What can end a sign-in earlier -- a sign-out, a deleted account --
    is checked in the database at every request, not here."""
    if not settings.emulated_auth and os.environ.get(EMULATOR_HOST_VAR):
        # firebase-admin reads this switch at every call: set after start-up, it would
        # turn off signature checks. Refuse rather than accept unsigned tokens.
        log.error("%s appeared in the environment after start-up", EMULATOR_HOST_VAR)
        fail(503, "Sign-in is temporarily unavailable; try again shortly.")
    verified: Verified = current_app.extensions.setdefault("verified_tokens", {})
    key = hashlib.sha256(token.encode()).digest()
    known = verified.get(key)
    if known is not None:
        claims, good_until = known
        if now() <= good_until:
            return claims
        verified.pop(key, None)  # another thread may have dropped it already
    claims = _verified_claims(token, settings)
    if len(verified) >= _VERIFIED_AT_MOST:
        verified.clear()
    skew = timedelta(seconds=settings.token_clock_skew_s)
    verified[key] = (claims, datetime.fromtimestamp(claims["exp"], UTC) + skew)
    return claims


def _verified_claims(token: str, settings: Settings) -> dict[str, Any]:
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
_BY_UID_AND_SIGN_IN = select(User, SignedOutSession.of_sign_in(User.id)).where(
    User.firebase_uid == bindparam("uid")
)


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
    return _seen(user, claims)


def _seen(user: User | None, claims: dict[str, Any]) -> User:
    """The signed-in user, created at their first sign-in; their last-seen instant kept to
    the hour."""
    uid = str(claims["uid"])
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
    if len(_KNOWN_IDS) >= _KNOWN_AT_MOST:
        _KNOWN_IDS.clear()
    _KNOWN_IDS[uid] = user.id
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
    g.auth_time = _auth_time(claims)
    known = _KNOWN_IDS.get(str(claims["uid"]))
    # Only a bare request defers the lookup: one with a query string could fail its
    # validation before the view reads the user, and answer a signed-out sign-in with a 422.
    if request.endpoint in FINDS_OWN_USER and not request.args and known is not None:
        g.sign_in = SignIn(known, str(claims["uid"]), g.auth_time, claims)
        return
    g.current_user = _provision(claims)
    g.sign_in = SignIn(g.current_user.id, str(claims["uid"]), g.auth_time, claims)


@dataclass(frozen=True)
class SignIn:
    """Who the verified token says is signing in: the user id (known from an earlier sign-in
    of this uid), the uid, the sign-in's instant and the token's claims."""

    user_id: int
    uid: str
    auth_time: int | None
    claims: dict[str, Any]

    def reader(self, user_id: int | None = None) -> tuple[int, str, int | None]:
        """(user id, uid, auth time): what a view's own read of its user binds."""
        return (self.user_id if user_id is None else user_id, self.uid, self.auth_time)


def current_sign_in() -> SignIn:
    """The request's verified sign-in (:data:`FINDS_OWN_USER` views read their user with it)."""
    sign_in: SignIn = g.sign_in
    return sign_in


def signed_in(user: User | None, signed_out: bool) -> User:
    """The user row a :data:`FINDS_OWN_USER` view read with :func:`current_sign_in`, checked
    as the hook checks it: a 401 for a signed-out sign-in, the last-seen instant kept."""
    if signed_out:
        _unauthorized("This sign-in was signed out; sign in again.")
    if user is None:  # gone since this process learnt its id: sign in afresh
        _KNOWN_IDS.pop(current_sign_in().uid, None)
        user = _provision(current_sign_in().claims)
    elif g.get("current_user") is not user:
        user = _seen(user, current_sign_in().claims)
    g.current_user = user
    return user


def current_user() -> User:
    user: User = g.current_user
    return user


def current_auth_time() -> int | None:
    """When the signed-in person's current sign-in happened (their token's ``auth_time``)."""
    auth_time: int | None = g.get("auth_time")
    return auth_time
