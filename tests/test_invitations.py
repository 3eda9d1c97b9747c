"""Caregiver access by consent: invitations, redemption, revocation, lapse, leaving."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from backend import db
from backend.devtokens import emulator_token
from backend.models import Invitation
from tests.conftest import Api, Clock, World, assert_error

PERMS = ["view_appointments", "view_medications"]


def invite(api: Api, patient_id: int, who: str = "maria", **extra: object) -> dict:
    body = {"relationship": "neighbour", "permissions": PERMS, **extra}
    r = api.post(f"/patients/{patient_id}/invitations", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def redeem(api: Api, code: str, who: str):  # type: ignore[no-untyped-def]
    return api.post("/invitations/redeem", as_=who, json={"code": code})


def test_an_invited_neighbour_gets_exactly_the_permissions_granted(api: Api, world: World) -> None:
    created = invite(api, world.maria, invitee_name="Rosa")
    assert len(created["code"]) >= 22  # >= 128 bits in URL-safe base64
    assert created["status"] == "pending"
    r = redeem(api, created["code"], "rosa")
    assert r.status_code == 201
    assert r.get_json()["permissions"] == PERMS
    record = api.get(f"/patients/{world.maria}", as_="rosa").get_json()
    assert record["my_role"] == "caregiver"
    assert "view_medications" in record["my_permissions"]
    assert_error(api.get(f"/patients/{world.maria}/caregivers", as_="rosa"), 403)
    listed = api.get(f"/patients/{world.maria}/invitations", as_="maria").get_json()
    assert listed[0]["status"] == "redeemed" and "code" not in listed[0]


def test_the_code_is_stored_only_as_a_hash(api: Api, world: World) -> None:
    created = invite(api, world.maria)
    row = db.session.get(Invitation, created["id"])
    assert row is not None and created["code"] not in row.code_hash
    assert len(row.code_hash) == 64


def test_a_code_works_once(api: Api, world: World) -> None:
    code = invite(api, world.maria)["code"]
    assert redeem(api, code, "rosa").status_code == 201
    body = assert_error(redeem(api, code, "mallory"), 410)
    assert "redeemed" in body["message"]
    assert_error(api.get(f"/patients/{world.maria}", as_="mallory"), 404)


def test_a_code_expires_after_72_hours(api: Api, world: World, clock: Clock) -> None:
    code = invite(api, world.maria)["code"]
    clock.advance(hours=72, seconds=1)
    assert "expired" in assert_error(redeem(api, code, "rosa"), 410)["message"]
    listed = api.get(f"/patients/{world.maria}/invitations?status=expired", as_="maria")
    assert [i["status"] for i in listed.get_json()] == ["expired"]


def test_a_cancelled_invitation_cannot_be_used(api: Api, world: World) -> None:
    created = invite(api, world.maria)
    r = api.delete(f"/patients/{world.maria}/invitations/{created['id']}", as_="maria")
    assert r.status_code == 204
    assert_error(redeem(api, created["code"], "rosa"), 410)
    assert_error(
        api.delete(f"/patients/{world.maria}/invitations/{created['id']}", as_="maria"), 409
    )


def test_guessing_codes_is_rate_limited_per_user(api: Api, world: World, clock: Clock) -> None:
    good = invite(api, world.maria)["code"]
    for i in range(5):
        assert_error(redeem(api, f"guess-{i}-" + "x" * 30, "mallory"), 404)
    limited = redeem(api, good, "mallory")  # even the right code waits
    assert_error(limited, 429)
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    assert redeem(api, good, "rosa").status_code == 201  # others are not affected
    clock.advance(minutes=15, seconds=1)
    assert_error(redeem(api, "guess-again-" + "x" * 30, "mallory"), 404)


def test_revocation_takes_effect_on_the_very_next_request(api: Api, world: World) -> None:
    assert api.get(f"/patients/{world.maria}", as_="ana").status_code == 200
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    ana = next(g for g in grants if g["relationship"] == "daughter")
    assert (
        api.delete(f"/patients/{world.maria}/caregivers/{ana['id']}", as_="maria").status_code
        == 204
    )
    assert_error(api.get(f"/patients/{world.maria}", as_="ana"), 404)
    assert api.get("/patients", as_="ana").get_json() == []
    listed = api.get(f"/patients/{world.maria}/caregivers?status=revoked", as_="maria")
    assert [g["id"] for g in listed.get_json()] == [ana["id"]]


def test_changing_permissions_applies_at_once(api: Api, world: World) -> None:
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    ana = next(g for g in grants if g["relationship"] == "daughter")
    r = api.patch(
        f"/patients/{world.maria}/caregivers/{ana['id']}",
        as_="maria",
        json={"permissions": ["view_appointments"]},
    )
    assert r.status_code == 200 and r.get_json()["permissions"] == ["view_appointments"]
    perms = api.get(f"/patients/{world.maria}", as_="ana").get_json()["my_permissions"]
    assert "view_medications" not in perms and "view_appointments" in perms
    assert_error(
        api.patch(
            f"/patients/{world.maria}/caregivers/{ana['id']}",
            as_="maria",
            json={"permissions": ["fly"]},
        ),
        422,
    )


def test_a_two_week_grant_lapses_by_itself(api: Api, world: World, clock: Clock) -> None:
    ends = clock.at + timedelta(days=14)
    code = invite(api, world.maria, grant_ends_at=ends.isoformat())["code"]
    assert redeem(api, code, "rosa").get_json()["ends_at"].startswith(ends.date().isoformat())
    clock.advance(days=13, hours=23)
    assert api.get(f"/patients/{world.maria}", as_="rosa").status_code == 200
    clock.advance(hours=1)
    assert_error(api.get(f"/patients/{world.maria}", as_="rosa"), 404)
    lapsed = api.get(f"/patients/{world.maria}/caregivers?status=lapsed", as_="maria")
    assert [g["status"] for g in lapsed.get_json()] == ["lapsed"]


def test_a_caregiver_can_leave(api: Api, world: World) -> None:
    grants = api.get("/patients", as_="ana").get_json()
    assert [p["id"] for p in grants] == [world.maria]
    listed = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    ana = next(g for g in listed if g["relationship"] == "daughter")
    assert (
        api.delete(f"/patients/{world.maria}/caregivers/{ana['id']}", as_="ana").status_code == 204
    )
    listed = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    assert next(g for g in listed if g["id"] == ana["id"])["status"] == "left"


def test_a_patient_cannot_redeem_their_own_invitation(api: Api, world: World) -> None:
    code = invite(api, world.maria)["code"]
    assert_error(redeem(api, code, "maria"), 409)
    assert_error(redeem(api, invite(api, world.maria)["code"], "ana"), 409)  # already has


def test_invitations_refuse_bad_input_and_store_nothing(api: Api, world: World) -> None:
    path = f"/patients/{world.maria}/invitations"
    for bad in (
        {"relationship": "neighbour", "permissions": []},
        {"relationship": "neighbour", "permissions": ["root"]},
        {"relationship": "nemesis", "permissions": PERMS},
        {"relationship": "neighbour", "permissions": PERMS, "expires_in_hours": 0},
        {
            "relationship": "neighbour",
            "permissions": PERMS,
            "grant_ends_at": "2020-01-01T00:00:00+00:00",
        },
        {
            "relationship": "neighbour",
            "permissions": PERMS,
            "grant_ends_at": "2030-01-01T00:00:00",
        },  # no offset
        {"relationship": "neighbour", "permissions": PERMS, "status": "redeemed"},
    ):
        assert_error(api.post(path, as_="maria", json=bad), 422)
    assert db.session.scalars(select(Invitation)).all() == []


def test_david_creates_a_managed_patient_who_later_links_his_own_login(
    api: Api, world: World
) -> None:
    r = api.post(f"/patients/{world.chen}/link-code", as_="david", json={})
    assert r.status_code == 201 and r.get_json()["kind"] == "self_link"
    code = r.get_json()["code"]
    assert_error(redeem(api, code, "david"), 409)  # the caregiver cannot claim the record
    linked = redeem(api, code, "wei-chen-login")
    assert linked.status_code == 201 and linked.get_json()["kind"] == "self_link"
    mine = api.get("/me/patient", as_="wei-chen-login").get_json()
    assert mine["id"] == world.chen and mine["my_role"] == "self"
    assert api.get("/me", as_="wei-chen-login").get_json()["time_zone"] == "America/Los_Angeles"
    still = api.get(f"/patients/{world.chen}", as_="david").get_json()
    assert still["my_role"] == "managing_caregiver" and still["managed"] is False
    assert_error(api.post(f"/patients/{world.chen}/link-code", as_="david", json={}), 409)


def test_a_caregiver_creates_a_managed_patient_and_becomes_managing(api: Api) -> None:
    r = api.post(
        "/patients",
        as_="ana",
        json={
            "display_name": "Lucas",
            "relationship": "parent",
            "birth_date": "2019-04-01",
            "time_zone": "America/New_York",
        },
    )
    assert r.status_code == 201, r.get_json()
    lucas = r.get_json()
    assert lucas["managed"] is True and lucas["my_role"] == "managing_caregiver"
    assert lucas["language"] == "en-US"  # from Ana's profile
    listed = api.get(f"/patients/{lucas['id']}/caregivers", as_="ana").get_json()
    assert listed[0]["is_managing"] is True
    # the only managing caregiver of someone without a login cannot just walk away
    assert_error(
        api.delete(f"/patients/{lucas['id']}/caregivers/{listed[0]['id']}", as_="ana"), 409
    )
    assert_error(api.get(f"/patients/{lucas['id']}", as_="sam"), 404)


def test_own_patient_record_is_created_once(api: Api) -> None:
    assert_error(api.get("/me/patient", as_="newbie"), 404)
    r = api.post("/me/patient", as_="newbie", json={"birth_date": "1990-02-03"})
    assert r.status_code == 201 and r.get_json()["my_role"] == "self"
    assert_error(api.post("/me/patient", as_="newbie", json={}), 409)
    assert [p["my_role"] for p in api.get("/patients", as_="newbie").get_json()] == ["self"]


def test_a_caregiver_cannot_tell_which_grant_ids_exist(api: Api, world: World) -> None:
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    (ana,) = [g for g in grants if g["caregiver_user_id"] == world.users["ana"].id]
    # Priya is on María's team and may see her, but ending Ana's access is not hers to do:
    # an existing grant and a made-up id give the same answer.
    real = api.delete(f"/patients/{world.maria}/caregivers/{ana['id']}", as_="priya")
    made_up = api.delete(f"/patients/{world.maria}/caregivers/99999", as_="priya")
    assert (real.status_code, made_up.status_code) == (404, 404)
    assert real.get_json()["message"] == made_up.get_json()["message"]


def test_a_caregiver_who_signs_in_without_a_name_gets_the_name_on_the_invitation(
    api: Api, world: World
) -> None:
    created = invite(api, world.maria, invitee_name="Rosa Díaz")
    # A phone-number sign-in: the token carries neither a name nor an email.
    token = emulator_token(api.app.config["SETTINGS"], "rosa-phone-only")
    r = api.client.post(
        "/invitations/redeem",
        json={"code": created["code"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.get_json()
    listed = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    assert "Rosa Díaz" in [g["caregiver_name"] for g in listed]
