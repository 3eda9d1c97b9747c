"""Who gives the dose: the on-time reminder and its follow-up go to the patient, to chosen
caregivers who give the doses, or both (per patient, per medicine), end to end: the API ->
planner -> outbox -> dispatcher -> real firebase-admin -> local FCM. SQLite and
(TEST_DATABASE_URL) PostgreSQL; the injected clock moves time, nothing sleeps.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.db import write_transaction
from backend.models import CaregiverGrant, Reminder
from backend.reminders.device_health import check_device_health
from notifications import register_device
from notifications.channels.console import ConsoleChannel
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import Api, Clock, World, assert_error
from tests.fcmserver import FcmServer
from tests.scenes import DAILY_NOON, NOON, phones
from tests.wiring import WIRED
from tests.wiring import dispatch_until as run_until


@pytest.fixture
def people(api: Api, world: World) -> World:
    return phones(world, "maria", "ana", "priya", "david", patients=("maria", "chen"))


def add_med(api: Api, patient_id: int, who: str, name: str = "Lisinopril") -> int:
    body = {"name": name, "timing": DAILY_NOON, "start_date": "2026-01-01"}
    r = api.post(f"/patients/{patient_id}/medications", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def set_givers(api: Api, patient_id: int, who: str, **body: Any) -> Any:
    return api.put(f"/patients/{patient_id}/dose-givers", as_=who, json=body)


def kinds(fcm: FcmServer, token: str) -> list[str]:
    return [m["data"]["kind"] for m in fcm.to(token)]


def pending(user_id: int, kind: str = "dose") -> list[Reminder]:
    """The user's pending reminders of kind about today's noon dose (not tomorrow's)."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Reminder).where(
                Reminder.user_id == user_id,
                Reminder.kind == kind,
                Reminder.state == "pending",
                Reminder.due_at < NOON + timedelta(hours=12),
            )
        )
    )


def log(api: Api, patient_id: int, med_id: int, who: str, clock: Clock) -> None:
    body = {
        "medication_id": med_id,
        "client_id": f"{who}-{int(clock.at.timestamp())}",
        "status": "taken",
        "taken_at": clock.at.isoformat(),
    }
    r = api.post(f"/patients/{patient_id}/doses", as_=who, json=body)
    assert r.status_code == 201, r.get_json()


def ana_grant(world: World) -> CaregiverGrant:
    grant = db.session.scalar(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == world.users["ana"].id)
    )
    assert grant is not None
    return grant


def test_david_is_told_it_is_time_for_weis_medicine_then_the_follow_up_then_the_escalation(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    """Wei has dementia and no login: by default David, who manages him, gives the doses."""
    r = api.get(f"/patients/{people.chen}/dose-givers", as_="david")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["receives"] == "caregivers" and r.get_json()["is_default"] is True
    assert [g["user_id"] for g in r.get_json()["reaches"]] == [people.users["david"].id]
    # A managed patient's default chain: David again, the caregivers, then the care team.
    steps = api.get(f"/patients/{people.chen}/escalation", as_="david").get_json()["steps"]
    assert [(s["after_minutes"], s["notify"]) for s in steps] == [
        (30, "patient"),
        (60, "caregivers"),
        (120, "care_team"),
    ]
    add_med(api, people.chen, "david", "Donepezil")

    run_until(engine, channel, clock, NOON - timedelta(minutes=1), WIRED)
    assert fcm.to("david-phone") == []
    run_until(engine, channel, clock, NOON, WIRED)
    (on_time,) = fcm.to("david-phone")
    assert on_time["notification"]["body"] == "It's time for Wei's medicine."
    run_until(engine, channel, clock, NOON + timedelta(minutes=30), WIRED)
    assert fcm.to("david-phone")[1]["notification"]["body"] == (
        "Has Wei taken their medicine? Tap to log it."
    )
    run_until(engine, channel, clock, NOON + timedelta(minutes=60), WIRED)
    assert kinds(fcm, "david-phone") == ["dose", "dose_followup", "missed_dose_alert"]
    assert fcm.to("priya-phone") == []
    run_until(engine, channel, clock, NOON + timedelta(minutes=120), WIRED)
    (team,) = fcm.to("priya-phone")
    assert team["data"]["kind"] == "missed_dose_alert"
    assert team["notification"]["body"] == "Wei has not logged a scheduled dose."
    assert "Donepezil" not in str(fcm.received)  # lock-screen safe


def test_maria_with_both_she_and_ana_are_told_and_her_log_cancels_anas(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana = people.users["ana"].id
    r = set_givers(api, people.maria, "maria", receives="both", caregiver_user_ids=[ana])
    assert r.status_code == 200, r.get_json()
    assert [(g["user_id"], g["is_patient"]) for g in r.get_json()["reaches"]] == [
        (people.users["maria"].id, True),
        (ana, False),
    ]
    med = add_med(api, people.maria, "maria")
    run_until(engine, channel, clock, NOON, WIRED)
    assert kinds(fcm, "maria-phone") == ["dose"] and kinds(fcm, "ana-phone") == ["dose"]
    assert fcm.to("ana-phone")[0]["notification"]["body"] == "It's time for María's medicine."
    assert pending(ana, "dose_followup")

    clock.at = NOON + timedelta(minutes=10)
    log(api, people.maria, med, "maria", clock)
    # At once, for everyone: Ana's follow-up and alert are gone with María's own.
    assert pending(ana, "dose_followup") == [] and pending(ana, "missed_dose_alert") == []
    run_until(engine, channel, clock, NOON + timedelta(hours=3), WIRED)
    assert kinds(fcm, "maria-phone") == ["dose"] and kinds(fcm, "ana-phone") == ["dose"]


def test_a_chosen_giver_whose_log_doses_is_removed_stops_getting_them_at_once(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana, maria = people.users["ana"].id, people.users["maria"].id
    r = set_givers(api, people.maria, "maria", receives="caregivers", caregiver_user_ids=[ana])
    assert r.status_code == 200, r.get_json()
    add_med(api, people.maria, "maria")
    assert len(pending(ana)) == 1 and pending(maria) == []

    grant = ana_grant(people)
    kept = [p for p in grant.permissions if p != "log_doses"]
    r = api.patch(
        f"/patients/{people.maria}/caregivers/{grant.id}", as_="maria", json={"permissions": kept}
    )
    assert r.status_code == 200, r.get_json()
    assert pending(ana) == []
    # Nobody chosen gives them any more: the default (María herself) has them at once.
    assert len(pending(maria)) == 1
    r = api.get(f"/patients/{people.maria}/dose-givers", as_="maria")
    assert r.get_json()["receives"] == "caregivers"
    assert [g["user_id"] for g in r.get_json()["reaches"]] == [maria]
    run_until(engine, channel, clock, NOON + timedelta(minutes=30), WIRED)
    assert kinds(fcm, "maria-phone") == ["dose", "dose_followup"]
    assert "dose" not in kinds(fcm, "ana-phone")


def test_the_dispatcher_drops_a_giver_who_lost_log_doses_after_planning(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana = people.users["ana"].id
    set_givers(api, people.maria, "maria", receives="both", caregiver_user_ids=[ana])
    add_med(api, people.maria, "maria")
    # Changed behind the service's back (no re-plan): the send-time check still refuses.
    grant = ana_grant(people)
    grant.permissions = [p for p in grant.permissions if p != "log_doses"]
    db.session.commit()
    run_until(engine, channel, clock, NOON, WIRED)
    assert kinds(fcm, "maria-phone") == ["dose"] and fcm.to("ana-phone") == []
    db.session.expire_all()
    (dropped,) = db.session.scalars(
        select(Reminder).where(
            Reminder.user_id == ana, Reminder.kind == "dose", Reminder.due_at == NOON
        )
    )
    assert dropped.cancelled_reason == "access_revoked"


def test_revoking_the_chosen_giver_gives_the_doses_back_to_the_patient_at_once(
    ctx: Flask, people: World, api: Api
) -> None:
    ana, maria = people.users["ana"].id, people.users["maria"].id
    set_givers(api, people.maria, "maria", receives="caregivers", caregiver_user_ids=[ana])
    add_med(api, people.maria, "maria")
    assert pending(maria) == []
    r = api.delete(f"/patients/{people.maria}/caregivers/{ana_grant(people).id}", as_="maria")
    assert r.status_code == 204
    assert pending(ana) == [] and len(pending(maria)) == 1


def test_one_medicine_can_be_given_by_someone_else(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana = people.users["ana"].id
    own = add_med(api, people.maria, "maria", "Lisinopril")
    insulin = add_med(api, people.maria, "maria", "Insulin")
    r = set_givers(
        api,
        people.maria,
        "maria",
        medication_id=insulin,
        receives="caregivers",
        caregiver_user_ids=[ana],
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["is_default"] is True and body["receives"] == "patient"
    (override,) = body["overrides"]
    assert override["medication_id"] == insulin
    assert [g["user_id"] for g in override["reaches"]] == [ana]

    # Each medicine says who gives it.
    meds = api.get(f"/patients/{people.maria}/medications", as_="maria").get_json()
    given = {m["id"]: m["given_by"] for m in meds}
    assert given[own] == {
        "receives": "patient",
        "is_override": False,
        "user_ids": [people.users["maria"].id],
    }
    assert given[insulin] == {"receives": "caregivers", "is_override": True, "user_ids": [ana]}
    one = api.get(f"/patients/{people.maria}/medications/{insulin}", as_="ana").get_json()
    assert one["given_by"]["user_ids"] == [ana]

    run_until(engine, channel, clock, NOON + timedelta(minutes=30), WIRED)
    mine = {m["data"]["medication_id"] for m in fcm.to("maria-phone")}
    hers = {m["data"]["medication_id"] for m in fcm.to("ana-phone")}
    assert mine == {str(own)} and hers == {str(insulin)}
    assert kinds(fcm, "ana-phone") == ["dose", "dose_followup"]

    # Back to the patient's setting: the override goes.
    r = set_givers(api, people.maria, "maria", medication_id=insulin, receives=None)
    assert r.status_code == 200 and r.get_json()["overrides"] == []


def test_bad_settings_are_422_naming_who_and_change_nothing(
    ctx: Flask, people: World, api: Api
) -> None:
    ana, sam = people.users["ana"].id, people.users["sam"].id
    before = api.get(f"/patients/{people.maria}/dose-givers", as_="maria").get_json()

    body = assert_error(set_givers(api, people.chen, "david", receives="patient"), 422)
    assert "no login" in body["message"]
    body = assert_error(set_givers(api, people.maria, "maria", receives="caregivers"), 422)
    assert "at least one" in body["message"]
    body = assert_error(
        set_givers(api, people.maria, "maria", receives="caregivers", caregiver_user_ids=[sam]),
        422,
    )
    assert body["message"] == f"User {sam} is not a caregiver of this patient."
    assert "Sam" not in body["message"]  # a stranger's name is never told
    body = assert_error(
        set_givers(api, people.maria, "maria", receives="patient", caregiver_user_ids=[ana]), 422
    )
    assert_error(set_givers(api, people.maria, "maria", receives="everyone"), 422)
    assert_error(set_givers(api, people.maria, "maria", receives=None, colour="red"), 422)

    grant = ana_grant(people)
    grant.permissions = [p for p in grant.permissions if p != "log_doses"]
    db.session.commit()
    body = assert_error(
        set_givers(api, people.maria, "maria", receives="both", caregiver_user_ids=[ana]), 422
    )
    assert "Ana" in body["message"] and "log_doses" in body["message"]
    assert body["errors"]["json"]["caregiver_user_ids"]
    r = api.delete(f"/patients/{people.maria}/caregivers/{grant.id}", as_="maria")
    assert r.status_code == 204
    body = assert_error(
        set_givers(api, people.maria, "maria", receives="both", caregiver_user_ids=[ana]), 422
    )
    assert "Ana" in body["message"] and "no longer has access" in body["message"]

    # Another patient's medicine is not one of hers.
    wei_med = add_med(api, people.chen, "david", "Donepezil")
    r = set_givers(api, people.maria, "maria", medication_id=wei_med, receives="patient")
    assert_error(r, 404)
    assert api.get(f"/patients/{people.maria}/dose-givers", as_="maria").get_json() == before


def test_who_may_read_and_who_may_set_it(ctx: Flask, people: World, api: Api) -> None:
    path = f"/patients/{people.maria}/dose-givers"
    assert api.get(path, as_="priya").status_code == 200  # the care team reads
    assert api.get(path, as_="ana").status_code == 200
    assert_error(api.put(path, as_="priya", json={"receives": "patient"}), 403)
    assert_error(api.put(path, as_="ana", json={"receives": "patient"}), 403)
    # Another person's patient is a 404, reading or writing.
    assert_error(api.get(path, as_="david"), 404)
    assert_error(api.put(path, as_="david", json={"receives": "patient"}), 404)
    assert_error(api.get(path, as_="sam"), 404)
    assert_error(api.get("/patients/987654/dose-givers", as_="maria"), 404)
    r = api.put(f"/patients/{people.chen}/dose-givers", as_="david", json={"receives": None})
    assert r.status_code == 200, r.get_json()


def _check(engine: Engine, clock: Clock) -> dict[str, int]:
    with write_transaction(engine) as conn, Session(bind=conn) as session:
        counts = check_device_health(session, clock())
        session.flush()
    db.session.expire_all()
    return counts


def test_device_health_covers_the_caregiver_who_gives_the_doses(
    ctx: Flask, engine: Engine, world: World, api: Api, clock: Clock
) -> None:
    """David gives Wei's doses but signed out: nobody else looks after Wei, so the care
    team hears of it, once; David signing in again closes it."""
    register_device(db.session(), world.users["priya"].id, "p", "priya-phone", "android")
    register_device(db.session(), world.users["maria"].id, "m", "maria-phone", "android")
    db.session.commit()
    add_med(api, world.chen, "david", "Donepezil")
    counts = _check(engine, clock)
    assert counts["alerts"] == 1
    (alert,) = db.session.scalars(select(Reminder).where(Reminder.kind == "device_health"))
    assert alert.user_id == world.users["priya"].id and alert.patient_id == world.chen
    assert alert.subject["giver_user_id"] == world.users["david"].id
    assert _check(engine, clock)["alerts"] == 0  # one per episode

    out = io.StringIO()
    assert dispatch_once(engine, ConsoleChannel(out), "w", clock(), WIRED).sent == 1
    assert "Wei's medicine reminders are not reaching a caregiver who gives them." in (
        out.getvalue()
    )
    register_device(db.session(), world.users["david"].id, "d", "david-phone", "android")
    db.session.commit()
    assert _check(engine, clock)["resolved"] == 1


def test_device_health_tells_the_patient_when_her_chosen_giver_cannot_be_reached(
    ctx: Flask, engine: Engine, world: World, api: Api, clock: Clock
) -> None:
    maria, ana = world.users["maria"].id, world.users["ana"].id
    register_device(db.session(), maria, "m", "maria-phone", "android")
    db.session.commit()
    add_med(api, world.maria, "maria")
    assert _check(engine, clock)["alerts"] == 0  # María gives her own doses: reachable
    r = set_givers(api, world.maria, "maria", receives="both", caregiver_user_ids=[ana])
    assert r.status_code == 200
    assert _check(engine, clock)["alerts"] == 1
    (alert,) = db.session.scalars(select(Reminder).where(Reminder.kind == "device_health"))
    assert alert.user_id == maria and alert.subject["giver_user_id"] == ana
    # Back to María alone: Ana's phone no longer matters, the episode closes.
    set_givers(api, world.maria, "maria", receives=None)
    assert _check(engine, clock)["resolved"] == 1
