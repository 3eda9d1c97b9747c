"""Device-health alerts wait for the end of the recipient's quiet hours, like the other
non-urgent kinds, and still go once per problem episode.

Ana (María's caregiver, receive_missed_dose_alerts) sets 22:00-07:00 in her own zone; María's
phone stops receiving at night. The real check, dispatcher (local FCM server) and API, the
injected clock; SQLite and, with TEST_DATABASE_URL, PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.db import write_transaction
from backend.models import Reminder
from backend.reminders import device_health as health
from backend.reminders.device_health import check_device_health
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import START, Api, Clock, World
from tests.fcmserver import FcmServer
from tests.wiring import CHECKED

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY).astimezone(UTC)


def la(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LA).astimezone(UTC)


@pytest.fixture
def night(api: Api, world: World) -> Iterator[World]:
    """Both phones work; Ana's quiet hours are 22:00-07:00 (she lives in New York)."""
    session = db.session()
    for who in ("maria", "ana"):
        register_device(session, world.users[who].id, f"inst-{who}", f"{who}-phone", "android")
    session.commit()
    quiet_hours(api, "22:00", "07:00")
    yield world


def quiet_hours(api: Api, start: str | None, end: str | None, **more: str) -> None:
    body = {"quiet_hours_start": start, "quiet_hours_end": end, **more}
    r = api.patch("/me", as_="ana", json=body)
    assert r.status_code == 200, r.get_json()


def maria_phone(world: World, clock: Clock, at: datetime, *, receiving: bool) -> None:
    clock.at = at
    register_device(
        db.session(),
        world.users["maria"].id,
        "inst-maria",
        "maria-phone",
        "android",
        notifications_enabled=receiving,
    )
    db.session.commit()


def check(engine: Engine, clock: Clock, at: datetime) -> dict[str, int]:
    clock.at = at
    with write_transaction(engine) as conn, Session(bind=conn) as session:
        counts = check_device_health(session, at)
        session.flush()
    db.session.expire_all()
    return counts


def alerts() -> list[Reminder]:
    db.session.expire_all()
    stmt = select(Reminder).where(Reminder.kind == "device_health").order_by(Reminder.id)
    return list(db.session.scalars(stmt))


def send_at(engine: Engine, channel: FcmChannel, clock: Clock, at: datetime) -> None:
    clock.at = at
    db.session.commit()
    while dispatch_once(engine, channel, "w1", at, CHECKED).claimed:
        pass
    db.session.expire_all()


def to_ana(fcm: FcmServer) -> list[str]:
    return [m["data"]["kind"] for m in fcm.to("ana-phone")]


def test_an_alert_found_at_night_waits_for_the_morning_and_goes_once(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    night: World,
    clock: Clock,
) -> None:
    assert ny(25, 10) == START
    assert check(engine, clock, START)["alerts"] == 0
    maria_phone(night, clock, ny(25, 23), receiving=False)  # notifications turned off

    assert check(engine, clock, ny(25, 23))["alerts"] == 1
    (alert,) = alerts()
    assert alert.user_id == night.users["ana"].id and alert.state == "pending"
    assert (alert.due_at, alert.next_attempt_at) == (ny(26, 7), ny(26, 7))  # not 23:00
    assert alert.not_after == ny(25, 23) + health.ALERT_LATENESS
    assert alert.subject["problem"] == "notifications_off"

    # The checks during the night find the held row's episode: nothing more.
    for at in (ny(25, 23, 15), ny(25, 23, 30), ny(26, 3), ny(26, 6, 45)):
        counts = check(engine, clock, at)
        assert (counts["alerts"], counts["resolved"]) == (0, 0)
        send_at(engine, channel, clock, at)
    assert len(alerts()) == 1 and to_ana(fcm) == []

    send_at(engine, channel, clock, ny(26, 6, 59))
    assert to_ana(fcm) == []
    assert check(engine, clock, ny(26, 7))["alerts"] == 0
    send_at(engine, channel, clock, ny(26, 7))
    assert to_ana(fcm) == ["device_health"]
    (alert,) = alerts()
    assert alert.state == "sent" and alert.sent_at == ny(26, 7)
    # Still the same episode after the morning: no second alert.
    assert check(engine, clock, ny(26, 7, 15))["alerts"] == 0
    send_at(engine, channel, clock, ny(26, 12))
    assert to_ana(fcm) == ["device_health"]


def test_a_problem_fixed_during_the_night_is_not_alerted_in_the_morning(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    night: World,
    clock: Clock,
) -> None:
    maria_phone(night, clock, ny(25, 23), receiving=False)
    assert check(engine, clock, ny(25, 23))["alerts"] == 1
    maria_phone(night, clock, ny(26, 2), receiving=True)
    assert check(engine, clock, ny(26, 2))["resolved"] == 1
    (alert,) = alerts()
    assert alert.state == "cancelled" and alert.cancelled_reason == "device health restored"
    assert alert.subject["resolved_at"]
    send_at(engine, channel, clock, ny(26, 7))
    assert to_ana(fcm) == []

    # The next night is a new episode, held again.
    maria_phone(night, clock, ny(26, 23), receiving=False)
    assert check(engine, clock, ny(26, 23))["alerts"] == 1
    assert [a.due_at for a in alerts()] == [ny(26, 7), ny(27, 7)]


def test_fixed_after_the_last_check_the_dispatcher_drops_it(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    night: World,
    clock: Clock,
) -> None:
    maria_phone(night, clock, ny(25, 23), receiving=False)
    assert check(engine, clock, ny(25, 23))["alerts"] == 1
    assert check(engine, clock, ny(26, 6, 45))["alerts"] == 0
    maria_phone(night, clock, ny(26, 6, 55), receiving=True)  # before the next check
    send_at(engine, channel, clock, ny(26, 7))
    assert to_ana(fcm) == []
    (alert,) = alerts()
    assert alert.state == "cancelled" and alert.cancelled_reason == "device health restored"
    # The next check closes the episode.
    assert check(engine, clock, ny(26, 7))["resolved"] == 1
    assert alerts()[0].subject["resolved_at"]


def test_the_quiet_hours_are_in_the_recipients_own_zone(
    ctx: Flask, engine: Engine, api: Api, night: World, clock: Clock
) -> None:
    quiet_hours(api, "22:00", "07:00", time_zone="America/Los_Angeles")
    # 23:00 in New York is 20:00 for Ana in Los Angeles: not quiet for her, due at once.
    maria_phone(night, clock, ny(25, 23), receiving=False)
    assert check(engine, clock, ny(25, 23))["alerts"] == 1
    assert [a.due_at for a in alerts()] == [ny(25, 23)]
    maria_phone(night, clock, ny(26, 0), receiving=True)
    assert check(engine, clock, ny(26, 0))["resolved"] == 1
    # 01:30 in New York is 22:30 in Los Angeles: held until 07:00 there (10:00 in New York).
    maria_phone(night, clock, ny(26, 1, 30), receiving=False)
    assert check(engine, clock, ny(26, 1, 30))["alerts"] == 1
    assert alerts()[-1].due_at == la(26, 7) == ny(26, 10)


def test_an_alert_that_would_wait_past_its_not_after_is_dropped(
    ctx: Flask,
    engine: Engine,
    night: World,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "ALERT_LATENESS", timedelta(hours=4))
    maria_phone(night, clock, ny(25, 23), receiving=False)
    assert check(engine, clock, ny(25, 23))["alerts"] == 0  # 07:00 is past 03:00
    assert check(engine, clock, ny(26, 3))["alerts"] == 0
    assert alerts() == []
    # The morning's check alerts (it is still a problem), due at once.
    assert check(engine, clock, ny(26, 7))["alerts"] == 1
    assert [(a.due_at, a.state) for a in alerts()] == [(ny(26, 7), "pending")]


def test_changing_quiet_hours_moves_a_waiting_alert(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    api: Api,
    night: World,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    maria_phone(night, clock, ny(25, 23), receiving=False)
    assert check(engine, clock, ny(25, 23))["alerts"] == 1
    assert [a.due_at for a in alerts()] == [ny(26, 7)]

    clock.at = ny(25, 23, 20)
    quiet_hours(api, "21:00", "06:00")  # earlier morning
    assert [(a.due_at, a.next_attempt_at) for a in alerts()] == [(ny(26, 6), ny(26, 6))]
    quiet_hours(api, None, None)  # no quiet hours: due now
    assert [(a.due_at, a.state) for a in alerts()] == [(ny(25, 23, 20), "pending")]
    assert check(engine, clock, ny(25, 23, 30))["alerts"] == 0  # still the same episode
    send_at(engine, channel, clock, ny(25, 23, 30))
    assert to_ana(fcm) == ["device_health"]

    # Quiet hours set while an alert is due: held, or dropped if that is past not_after.
    maria_phone(night, clock, ny(26, 0), receiving=True)
    assert check(engine, clock, ny(26, 0))["resolved"] == 1
    monkeypatch.setattr(health, "ALERT_LATENESS", timedelta(hours=4))
    maria_phone(night, clock, ny(26, 1), receiving=False)
    assert check(engine, clock, ny(26, 1))["alerts"] == 1
    quiet_hours(api, "01:00", "04:00")
    assert [(a.due_at, a.state) for a in alerts()][-1] == (ny(26, 4), "pending")
    quiet_hours(api, "00:00", "07:00")
    newest = alerts()[-1]
    assert (newest.state, newest.cancelled_reason) == ("cancelled", "quiet_hours")
    assert check(engine, clock, ny(26, 1, 15))["alerts"] == 0  # the episode is still open
