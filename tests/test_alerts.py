"""Missed-dose alerts as their recipients live them: "I'm on it" only on an alert that reached
you, the later steps to others stop (never the patient's own follow-up), the alert on the
others' phones is replaced by "Ana is on it" under the same tag / collapse id, and
``GET /me/alerts`` lists who took each.

Planner -> outbox -> dispatcher (with the worker's wiring) -> real firebase-admin -> local
FCM; SQLite and (TEST_DATABASE_URL) PostgreSQL; the injected clock moves time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import AccessLogEntry, CaregiverGrant, User
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from tests.conftest import Api, Clock, World, assert_error
from tests.fcmserver import FcmServer
from tests.scenes import NOON, noon_medicine, phones, rows
from tests.wiring import WIRED, dispatch_until


@pytest.fixture
def people(api: Api, world: World) -> World:
    phones(world, "maria", "ana", "priya")
    # The team hears first, then Ana, then María's own follow-up, then the team again.
    chain = {
        "steps": [
            {"after_minutes": 20, "notify": "care_team"},
            {"after_minutes": 25, "notify": "caregiver", "user_id": world.users["ana"].id},
            {"after_minutes": 40, "notify": "patient"},
            {"after_minutes": 50, "notify": "care_team"},
        ]
    }
    r = api.put(f"/patients/{world.maria}/escalation", as_="maria", json=chain)
    assert r.status_code == 200, r.get_json()
    noon_medicine(api, world)
    return world


def alert_of(fcm: FcmServer, token: str) -> dict[str, Any]:
    (alert,) = [m for m in fcm.to(token) if m["data"]["kind"] == "missed_dose_alert"]
    return alert


def test_an_alert_not_yet_sent_cannot_be_acknowledged_and_changes_nothing(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, people: World, api: Api
) -> None:
    priya = people.users["priya"].id
    first, _later = rows(kind="missed_dose_alert", user_id=priya)
    assert first.state == "pending"
    body = assert_error(api.post(f"/me/alerts/{first.id}/acknowledge", as_="priya"), 409)
    assert "not reached you" in body["message"]
    assert [r.state for r in rows(kind="missed_dose_alert")] == ["pending"] * 3
    # Nothing was taken: the list has nothing (nothing reached anyone yet).
    assert api.get("/me/alerts", as_="priya").get_json() == []


def test_ana_takes_it_priya_sees_ana_is_on_it_in_place_of_her_alert_maria_still_followed_up(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=26), WIRED)
    priyas = alert_of(fcm, "priya-phone")
    anas = alert_of(fcm, "ana-phone")
    priya_tag = priyas["android"]["notification"]["tag"]
    assert priya_tag == f"reminder-{priyas['data']['reminder_id']}"

    clock.at = NOON + timedelta(minutes=27)
    r = api.post(f"/me/alerts/{anas['data']['reminder_id']}/acknowledge", as_="ana")
    assert r.status_code == 200, r.get_json()
    # At once: the team's later step is cancelled; María's follow-up is not.
    (second,) = [a for a in rows(user_id=people.users["priya"].id) if a.subject.get("step") == 4]
    assert (second.state, second.cancelled_reason) == ("cancelled", "acknowledged")
    (follow_up,) = rows(kind="dose_followup")
    assert follow_up.state == "pending"

    dispatch_until(engine, channel, clock, NOON + timedelta(hours=2), WIRED)
    taken = [m for m in fcm.to("priya-phone") if m["data"]["kind"] == "alert_taken"]
    assert len(taken) == 1
    # The same tag and APNs collapse id as the alert it replaces on Priya's phone.
    assert taken[0]["android"]["notification"]["tag"] == priya_tag
    assert taken[0]["apns"]["headers"]["apns-collapse-id"] == priya_tag
    assert taken[0]["data"]["replaces"] == priyas["data"]["reminder_id"]
    assert taken[0]["notification"]["body"] == "Ana is on it: María's missed dose."
    assert "Lisinopril" not in str(taken[0])  # lock-screen safe by default
    # Ana, who took it, gets no "Ana is on it"; María still gets her own follow-up.
    assert [m["data"]["kind"] for m in fcm.to("ana-phone")] == ["missed_dose_alert"]
    assert [m["data"]["kind"] for m in fcm.to("maria-phone")] == ["dose", "dose_followup"]
    assert [m["data"]["kind"] for m in fcm.to("priya-phone")] == [
        "missed_dose_alert",
        "alert_taken",
    ]


def test_the_replacement_is_in_the_readers_language(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    assert api.patch("/me", as_="priya", json={"language": "es"}).status_code == 200
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=26), WIRED)
    anas = alert_of(fcm, "ana-phone")
    assert api.post(f"/me/alerts/{anas['data']['reminder_id']}/acknowledge", as_="ana").status_code
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=30), WIRED)
    (taken,) = [m for m in fcm.to("priya-phone") if m["data"]["kind"] == "alert_taken"]
    assert taken["notification"]["body"] == "Ana se ocupa de la dosis pendiente de María."


def test_my_alerts_list_who_took_each_and_are_access_logged(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=26), WIRED)
    (open_alert,) = api.get("/me/alerts", as_="priya").get_json()
    assert open_alert["status"] == "open"
    assert open_alert["taken_by_name"] is None
    assert open_alert["patient_id"] == people.maria

    anas = alert_of(fcm, "ana-phone")
    clock.at = NOON + timedelta(minutes=27)
    assert api.post(f"/me/alerts/{anas['data']['reminder_id']}/acknowledge", as_="ana").status_code
    # A second "I'm on it" (Priya's, on her own alert) says nothing new: Ana was first.
    priyas = alert_of(fcm, "priya-phone")
    r = api.post(f"/me/alerts/{priyas['data']['reminder_id']}/acknowledge", as_="priya")
    assert r.get_json()["acknowledged_by_user_id"] == people.users["ana"].id

    r = api.get("/me/alerts", as_="priya")
    assert r.status_code == 200, r.get_json()
    (seen,) = r.get_json()
    assert seen["status"] == "taken"
    assert (seen["taken_by_user_id"], seen["taken_by_me"]) == (people.users["ana"].id, False)
    assert seen["taken_by_name"] == "Ana García"
    assert seen["taken_at"].startswith("2026-11-25T17:27:00")
    (own,) = api.get("/me/alerts", as_="ana").get_json()
    assert own["taken_by_me"] is True
    assert api.get("/me/alerts", as_="sam").get_json() == []
    logged = db.session.scalars(
        select(AccessLogEntry.action).where(
            AccessLogEntry.patient_id == people.maria,
            AccessLogEntry.action == "view_alerts",
        )
    ).all()
    assert len(logged) == 3  # Priya twice, Ana once; the patient never sees her own row

    # Logging the dose settles it for everyone.
    body = {"medication_id": int(anas["data"]["medication_id"]), "client_id": "late-noon"}
    body |= {"status": "taken", "taken_at": clock.at.isoformat()}
    assert api.post(f"/patients/{people.maria}/doses", as_="ana", json=body).status_code == 201
    (settled,) = api.get("/me/alerts", as_="priya").get_json()
    assert settled["status"] == "dose_logged"

    # Alerts older than 7 days are no longer "recent".
    clock.at = NOON + timedelta(days=8)
    assert api.get("/me/alerts", as_="priya").get_json() == []


def test_a_caregiver_who_lost_access_sees_none_of_that_patients_alerts(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=26), WIRED)
    assert len(api.get("/me/alerts", as_="ana").get_json()) == 1
    grants = api.get(f"/patients/{people.maria}/caregivers", as_="maria").get_json()
    (grant,) = [g for g in grants if g["caregiver_user_id"] == people.users["ana"].id]
    assert api.delete(f"/patients/{people.maria}/caregivers/{grant['id']}", as_="maria").status_code
    assert api.get("/me/alerts", as_="ana").get_json() == []
    anas = alert_of(fcm, "ana-phone")
    assert_error(api.post(f"/me/alerts/{anas['data']['reminder_id']}/acknowledge", as_="ana"), 404)


def test_two_caregivers_alerted_ana_takes_it_luis_phone_shows_ana_is_on_it_in_its_place(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    # Luis, María's son, also receives her missed-dose alerts; both caregivers hear at once.
    luis = User(firebase_uid="luis", email="luis@example.org", display_name="Luis García")
    db.session.add(luis)
    db.session.flush()
    db.session.add(
        CaregiverGrant(
            patient_id=people.maria,
            caregiver_user_id=luis.id,
            relationship="son",
            permissions=["receive_missed_dose_alerts"],
            granted_by_user_id=people.users["maria"].id,
        )
    )
    register_device(db.session(), luis.id, "inst-luis", "luis-phone", "android")
    db.session.commit()
    chain = {"steps": [{"after_minutes": 20, "notify": "caregivers"}]}
    r = api.put(f"/patients/{people.maria}/escalation", as_="maria", json=chain)
    assert r.status_code == 200, r.get_json()

    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=21), WIRED)
    luis_alert = alert_of(fcm, "luis-phone")
    anas = alert_of(fcm, "ana-phone")
    assert api.post(f"/me/alerts/{anas['data']['reminder_id']}/acknowledge", as_="ana").status_code
    dispatch_until(engine, channel, clock, NOON + timedelta(minutes=23), WIRED)
    (taken,) = [m for m in fcm.to("luis-phone") if m["data"]["kind"] == "alert_taken"]
    tag = luis_alert["android"]["notification"]["tag"]
    assert tag == f"reminder-{luis_alert['data']['reminder_id']}"
    assert taken["android"]["notification"]["tag"] == tag
    assert taken["apns"]["headers"]["apns-collapse-id"] == tag
    assert taken["notification"]["body"] == "Ana is on it: María's missed dose."
    # Nothing of the kind for Ana, who took it.
    assert [m["data"]["kind"] for m in fcm.to("ana-phone")] == ["missed_dose_alert"]
