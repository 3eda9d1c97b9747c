"""Signing out ends that sign-in on the server: every token of it is refused afterwards,
while the same person's other sign-ins (their phone, a later sign-in) go on working."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from backend import db
from backend.devtokens import emulator_token
from backend.models import SignedOutSession
from tests.conftest import Api, Clock, assert_error

HOUR = timedelta(hours=1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_signed_out_token_is_refused_and_other_sign_ins_are_not(api: Api, clock: Clock) -> None:
    phone = api.token("priya")  # her phone signed in at START
    clock.advance(minutes=10)
    desk = api.token("priya")  # the console, ten minutes later
    assert api.get("/me", headers=_bearer(desk)).status_code == 200

    assert api.post("/me/sign-out", headers=_bearer(desk)).status_code == 204

    body = assert_error(api.get("/me", headers=_bearer(desk)), 401)
    assert body["message"] == "This sign-in was signed out; sign in again."
    assert_error(api.get("/worklist", headers=_bearer(desk)), 401)
    # The today view finds its reader in its own one read (backend.auth.FINDS_OWN_USER): it
    # refuses the signed-out sign-in the same way, and still serves her phone.
    body = assert_error(api.get("/me/today", headers=_bearer(desk)), 401)
    assert body["message"] == "This sign-in was signed out; sign in again."
    assert api.get("/me/today", headers=_bearer(phone)).status_code == 200
    body = assert_error(api.get("/me/today?date=tomorrow", headers=_bearer(desk)), 401)
    assert api.get("/me", headers=_bearer(phone)).status_code == 200
    clock.advance(seconds=30)
    assert api.get("/me", headers=_bearer(api.token("priya"))).status_code == 200
    # Another person who signed in at the same second is someone else's sign-in.
    clock.advance(minutes=-10, seconds=-30)
    assert api.get("/me", as_="omar").status_code == 200


def test_signing_out_needs_a_sign_in_and_is_recorded_once(api: Api) -> None:
    assert_error(api.post("/me/sign-out"), 401)
    token = api.token("ana")
    assert api.post("/me/sign-out", headers=_bearer(token)).status_code == 204
    assert_error(api.post("/me/sign-out", headers=_bearer(token)), 401)
    count = db.session.scalar(select(func.count()).select_from(SignedOutSession))
    assert count == 1


def test_a_token_used_before_is_refused_once_it_expires(api: Api, clock: Clock) -> None:
    # The app keeps a verified token's claims until it expires (backend.auth.verify_token):
    # a phone sends the same token all hour. Expiry still ends it, on the app's clock.
    token = emulator_token(api.app.config["SETTINGS"], "ines", "ines@example.org", "Ines", HOUR)
    assert api.get("/me", headers=_bearer(token)).status_code == 200
    clock.advance(minutes=59)
    assert api.get("/me/today", headers=_bearer(token)).status_code == 200
    clock.advance(minutes=1, seconds=6)  # past its exp and the 5 s of clock skew allowed
    for path in ("/me", "/me/today"):
        body = assert_error(api.get(path, headers=_bearer(token)), 401)
        assert body["message"] == "The ID token has expired; refresh it and try again."
