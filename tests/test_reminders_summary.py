"""The opt-in morning summary ("you have N things today"): planner, /me, render, FCM.

SQLite and (TEST_DATABASE_URL) PostgreSQL, the injected clock; nothing sleeps. START is
Wednesday 2026-11-25 10:00 in New York; the 48 h horizon holds the 26th's and 27th's 07:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import Patient, Reminder
from backend.reminders.planner import plan
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import START, Api, Clock, World
from tests.fcmserver import FcmServer
from tests.wiring import WIRED

NY = ZoneInfo("America/New_York")
TWICE_A_DAY = {
    "repeat": {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
        "timeOfDay": ["08:00:00", "20:00:00"],
    }
}


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY).astimezone(UTC)


@pytest.fixture
def people(api: Api, world: World) -> Iterator[World]:
    session = db.session()
    for who in ("maria", "ana", "david"):
        register_device(session, world.users[who].id, f"inst-{who}", f"{who}-phone", "android")
    chen = session.get(Patient, world.chen)
    assert chen is not None
    chen.time_zone = "America/New_York"
    session.commit()
    for who in ("maria", "david"):
        r = api.patch("/me", as_=who, json={"time_zone": "America/New_York", "wake_time": "07:00"})
        assert r.status_code == 200, r.get_json()
    yield world


def add_med(api: Api, patient_id: int, who: str) -> int:
    body = {"name": "Metformin", "timing": TWICE_A_DAY, "start_date": "2026-01-01"}
    r = api.post(f"/patients/{patient_id}/medications", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def add_appt(api: Api, patient_id: int, who: str, start: datetime) -> int:
    body = {
        "title": "Check-up",
        "type": "in_person",
        "location": "Riverside Clinic",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "reminder_lead_minutes": [],
    }
    r = api.post(f"/patients/{patient_id}/appointments", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def summaries(state: str | None = "pending") -> list[Reminder]:
    db.session.expire_all()
    stmt = select(Reminder).where(Reminder.kind == "summary")
    if state is not None:
        stmt = stmt.where(Reminder.state == state)
    return list(db.session.scalars(stmt.order_by(Reminder.due_at, Reminder.id)))


def send_at(engine: Engine, channel: FcmChannel, at: datetime) -> None:
    db.session.commit()
    while dispatch_once(engine, channel, "w1", at, WIRED).claimed:
        pass


def bodies(fcm: FcmServer, token: str) -> list[str]:
    return [m["notification"]["body"] for m in fcm.to(token) if m["data"]["kind"] == "summary"]


def opt_in(api: Api, who: str, **extra: Any) -> dict[str, Any]:
    r = api.patch("/me", as_=who, json={"morning_summary": True, **extra})
    assert r.status_code == 200, r.get_json()
    return dict(r.get_json())


def test_maria_opted_in_gets_one_spanish_summary_at_seven_with_the_count(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people.maria, "maria")  # 08:00 and 20:00
    add_appt(api, people.maria, "maria", ny(26, 10))
    add_appt(api, people.maria, "maria", ny(27, 10))
    me = opt_in(api, "maria")
    assert me["morning_summary"] is True and me["morning_summary_time"] is None
    plan(db.session(), START)
    rows = summaries()
    assert [(r.due_at, r.not_after) for r in rows] == [
        (ny(26, 7), ny(26, 10)),
        (ny(27, 7), ny(27, 10)),
    ]
    maria = people.users["maria"].id
    assert rows[0].dedupe_key == f"summary:{maria}:2026-11-26"
    assert rows[0].patient_id == people.maria

    send_at(engine, channel, ny(26, 6, 59))
    assert bodies(fcm, "maria-phone") == []
    # Booked after planning, before the morning: counted, the count is made at 07:00.
    add_appt(api, people.maria, "maria", ny(26, 15))
    send_at(engine, channel, ny(26, 7))
    assert bodies(fcm, "maria-phone") == ["Tiene 4 cosas planificadas para hoy."]
    send_at(engine, channel, ny(26, 9))
    assert len(bodies(fcm, "maria-phone")) == 1
    assert bodies(fcm, "ana-phone") == []


def test_not_opted_in_gets_none_and_planning_twice_creates_one(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    add_med(api, people.maria, "maria")
    assert "summary" not in plan(db.session(), START)
    assert summaries(None) == []

    opt_in(api, "maria", morning_summary_time="06:30")
    assert [r.due_at for r in summaries()] == [ny(26, 6, 30), ny(27, 6, 30)]
    assert "summary" not in plan(db.session(), START)
    assert "summary" not in plan(db.session(), START + timedelta(hours=1))
    assert plan(db.session(), START + timedelta(hours=24)).get("summary") == 1  # the 28th
    assert len(summaries()) == 3


def test_patch_me_toggles_it_and_moves_it(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    r = api.get("/me", as_="maria")
    assert r.get_json()["morning_summary"] is False
    opt_in(api, "maria")
    assert len(summaries()) == 2

    r = api.patch("/me", as_="maria", json={"morning_summary_time": "08:15"})
    assert r.status_code == 200 and r.get_json()["morning_summary_time"] == "08:15"
    assert [r.due_at for r in summaries()] == [ny(26, 8, 15), ny(27, 8, 15)]

    r = api.patch("/me", as_="maria", json={"morning_summary": False})
    assert r.status_code == 200 and r.get_json()["morning_summary"] is False
    assert summaries() == []
    assert "summary" not in plan(db.session(), START)
    assert api.patch("/me", as_="maria", json={"morning_summary": "maybe"}).status_code == 422


def test_quiet_hours_hold_the_summary_until_they_end(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    opt_in(api, "maria", quiet_hours_start="22:00", quiet_hours_end="07:30")
    assert [(r.due_at, r.not_after) for r in summaries()] == [
        (ny(26, 7, 30), ny(26, 10)),
        (ny(27, 7, 30), ny(27, 10)),
    ]


def test_a_caregiver_counts_the_people_they_care_for(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people.chen, "david")  # David manages Mr. Chen: 2 doses
    add_appt(api, people.chen, "david", ny(26, 11))
    add_med(api, people.maria, "maria")  # not David's to see
    opt_in(api, "david")
    send_at(engine, channel, ny(26, 7))
    (body,) = bodies(fcm, "david-phone")
    assert "3" in body, body
