"""Quiet hours: non-urgent reminders wait for their end; dose reminders never do.

SQLite and (TEST_DATABASE_URL) PostgreSQL, the injected clock; nothing sleeps. Maria sets
22:00-07:00 in New York (the rule is in backend/reminders/quiet_hours.py's docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import Patient, Reminder
from backend.reminders.planner import plan
from backend.reminders.quiet_hours import QuietHours, quiet_until
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import START, Api, Clock, World
from tests.fcmserver import FcmServer
from tests.wiring import CHECKED

NY = ZoneInfo("America/New_York")


def ny(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


NIGHT = QuietHours(NY, time(22, 0), time(7, 0))


# -- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "moved"),
    [
        (ny(25, 21, 59), None),  # before
        (ny(25, 22, 0), ny(26, 7)),  # the start is quiet
        (ny(25, 23, 30), ny(26, 7)),  # before midnight: the next morning
        (ny(26, 3, 0), ny(26, 7)),  # after midnight: the same morning
        (ny(26, 7, 0), None),  # the end is not quiet
        (ny(26, 12, 0), None),
        # The night clocks fall back (Nov 1): 07:00 EST, nine hours after 23:00 EDT.
        (ny(31, 23, 0, month=10), datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_quiet_until_wraps_midnight_in_the_users_zone(due: datetime, moved: Any) -> None:
    assert quiet_until(due, NIGHT) == moved


def test_quiet_hours_within_a_day_and_none() -> None:
    siesta = QuietHours(NY, time(13, 0), time(15, 0))
    assert quiet_until(ny(25, 14), siesta) == ny(25, 15)
    assert quiet_until(ny(25, 23), siesta) is None
    assert quiet_until(ny(25, 14), None) is None
    assert quiet_until(ny(25, 14), QuietHours(NY, time(9), time(9))) is None
    # Spring forward (Mar 8): quiet until 02:30, a time that does not exist; still later.
    gap = QuietHours(NY, time(1, 0), time(2, 30))
    due = datetime(2026, 3, 8, 1, 30, tzinfo=NY)
    moved = quiet_until(due.astimezone(UTC), gap)
    assert moved is not None and moved > due


# -- end to end ----------------------------------------------------------------------


@pytest.fixture
def people(api: Api, world: World) -> Iterator[World]:
    session = db.session()
    for who in ("maria", "ana"):
        register_device(session, world.users[who].id, f"inst-{who}", f"{who}-phone", "android")
    session.commit()
    r = api.patch(
        "/me",
        as_="maria",
        json={
            "time_zone": "America/New_York",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
        },
    )
    assert r.status_code == 200, r.get_json()
    patient = session.get(Patient, world.maria)
    assert patient is not None and patient.time_zone == "America/New_York"
    yield world


def at_local(hhmm: str) -> dict[str, Any]:
    return {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": [hhmm]}}


def add_med(api: Api, world: World, name: str, timing: dict[str, Any], **extra: Any) -> int:
    body = {"name": name, "timing": timing, "start_date": "2026-01-01", **extra}
    r = api.post(f"/patients/{world.maria}/medications", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def add_appt(api: Api, world: World, start: datetime, leads: list[int]) -> int:
    body = {
        "title": "Check-up",
        "type": "in_person",
        "location": "Riverside Clinic",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "reminder_lead_minutes": leads,
    }
    r = api.post(f"/patients/{world.maria}/appointments", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def pending(kind: str) -> list[Reminder]:
    db.session.expire_all()
    stmt = select(Reminder).where(Reminder.kind == kind, Reminder.state == "pending")
    return list(db.session.scalars(stmt.order_by(Reminder.due_at, Reminder.id)))


def send_at(engine: Engine, channel: FcmChannel, at: datetime) -> None:
    db.session.commit()
    while dispatch_once(engine, channel, "w1", at, CHECKED).claimed:
        pass


def kinds_to(fcm: FcmServer, token: str) -> list[str]:
    return [m["data"]["kind"] for m in fcm.to(token)]


def test_bedtime_doses_go_at_bedtime_appointments_wait_for_the_morning(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    assert ny(25, 10) == START
    add_med(api, people, "Insulin", at_local("23:00:00"), time_critical=True)
    add_med(api, people, "Melatonin", at_local("23:00:00"))
    at_730 = add_appt(api, people, ny(26, 7, 30), [60, 30])  # 06:30 and 07:00: one, at 07:00
    add_appt(api, people, ny(26, 6, 30), [60])  # 05:30 -> 07:00 is after it began: none

    assert [r.due_at for r in pending("dose")] == [ny(25, 23)] * 2 + [ny(26, 23)] * 2
    appts = pending("appointment")
    assert [(r.due_at, r.not_after, r.subject["appointment_id"]) for r in appts] == [
        (ny(26, 7), ny(26, 7, 30), at_730)
    ]

    send_at(engine, channel, ny(25, 23))
    assert kinds_to(fcm, "maria-phone") == ["dose", "dose"]  # both, at 23:00
    send_at(engine, channel, ny(26, 6, 59))
    assert "appointment" not in kinds_to(fcm, "maria-phone")
    send_at(engine, channel, ny(26, 7))
    assert kinds_to(fcm, "maria-phone").count("appointment") == 1
    assert all(n == 1 for n in fcm.tags().values())


def test_a_refill_found_at_night_is_sent_in_the_morning_once(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    add_med(
        api,
        people,
        "Lisinopril",
        at_local("12:00:00"),
        quantity_on_hand=2,
        refill_threshold_days=5,
    )
    # The medicine was added during the day: today's refill reminder is due at once.
    assert [r.due_at for r in pending("refill")] == [START]
    db.session.execute(Reminder.__table__.delete().where(Reminder.kind == "refill"))
    db.session.commit()

    created = plan(db.session(), ny(25, 23, 30))  # found late in the evening
    assert created.get("refill") == 1
    (refill,) = pending("refill")
    assert refill.due_at == ny(26, 7)
    assert refill.dedupe_key.endswith(":2026-11-26:" + str(refill.user_id))
    # The runs after midnight and in the morning plan the same row, not a second one.
    assert "refill" not in plan(db.session(), ny(26, 0, 30))
    assert "refill" not in plan(db.session(), ny(26, 7, 5))
    db.session.commit()
    assert len(pending("refill")) == 1


def test_changing_quiet_hours_re_plans_the_waiting_reminders(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    add_appt(api, people, ny(26, 8), [120])  # 06:00 -> 07:00
    assert [r.due_at for r in pending("appointment")] == [ny(26, 7)]

    r = api.patch("/me", as_="maria", json={"quiet_hours_start": None, "quiet_hours_end": None})
    assert r.status_code == 200, r.get_json()
    assert [r.due_at for r in pending("appointment")] == [ny(26, 6)]

    r = api.patch(
        "/me", as_="maria", json={"quiet_hours_start": "21:00", "quiet_hours_end": "06:30"}
    )
    assert r.status_code == 200, r.get_json()
    assert [r.due_at for r in pending("appointment")] == [ny(26, 6, 30)]
    assert [r.due_at for r in pending("dose")] == []  # nothing else appeared
