"""Device health: a person whose phones cannot receive pushes is told (today view), and
their caregivers get one alert per episode, not one a day.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL; the injected clock moves time.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.db import write_transaction
from backend.models import CaregiverGrant, Device, Reminder
from backend.reminders.device_health import check_device_health, reach_of
from notifications import enqueue, register_device
from notifications.channels import Push, Result, SendError
from notifications.channels.console import ConsoleChannel
from notifications.dispatch import dispatch_once
from tests.conftest import Api, Clock, World
from tests.wiring import WIRED


class RejectingChannel:
    """FCM answering UNREGISTERED for every token."""

    name = "rejecting"
    max_batch = 500

    def send(self, pushes: Sequence[Push]) -> list[Result]:
        error = SendError("UNREGISTERED", permanent=True, token_invalid=True)
        return [Result(p, error=error) for p in pushes]


def check(engine: Engine, clock: Clock) -> dict[str, int]:
    with write_transaction(engine) as conn, Session(bind=conn) as session:
        counts = check_device_health(session, clock())
        session.flush()
    db.session.expire_all()
    return counts


def health_alerts() -> list[Reminder]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Reminder).where(Reminder.kind == "device_health").order_by(Reminder.id)
        )
    )


def phone(world: World, persona: str, token: str, **kw: Any) -> int:
    device, _ = register_device(
        db.session(), world.users[persona].id, f"inst-{token}", token, "android", **kw
    )
    db.session.commit()
    return device.id


def reach(world: World, persona: str, clock: Clock) -> tuple[bool, str | None]:
    db.session.expire_all()
    r = reach_of(db.session(), world.users[persona].id, clock())
    return r.ok, r.problem


def test_each_kind_of_problem_is_recognised(ctx: Flask, world: World, clock: Clock) -> None:
    assert reach(world, "maria", clock) == (False, "no_device")
    device_id = phone(world, "maria", "m1", notifications_enabled=False)
    assert reach(world, "maria", clock) == (False, "notifications_off")
    phone(world, "maria", "m1", notifications_enabled=True)
    assert reach(world, "maria", clock) == (True, None)
    clock.advance(days=7, minutes=1)
    assert reach(world, "maria", clock) == (False, "not_seen")
    phone(world, "maria", "m1")  # the app opened again
    assert reach(world, "maria", clock) == (True, None)
    device = db.session.get_one(Device, device_id)
    device.active, device.deactivated_reason = False, "UNREGISTERED"
    db.session.commit()
    assert reach(world, "maria", clock) == (False, "tokens_rejected")
    device.deactivated_reason = None  # signed out, not rejected
    db.session.commit()
    assert reach(world, "maria", clock) == (False, "no_device")


def test_a_rejected_only_token_alerts_the_caregiver_once_per_episode(
    ctx: Flask, engine: Engine, world: World, clock: Clock
) -> None:
    ana_phone = phone(world, "ana", "ana-phone")
    phone(world, "maria", "maria-only")
    phone(world, "david", "david-phone")
    assert check(engine, clock)["alerts"] == 0

    # A dose reminder: FCM rejects Maria's only token, the device is deactivated.
    enqueue(
        db.session(),
        dedupe_key="dose:x",
        kind="dose",
        user_id=world.users["maria"].id,
        patient_id=world.maria,
        due_at=clock(),
        not_after=clock() + timedelta(hours=2),
    )
    db.session.commit()
    assert dispatch_once(engine, RejectingChannel(), "w", clock()).devices_deactivated == 1

    counts = check(engine, clock)
    assert counts["alerts"] == 1 and counts["unreachable"] == 1
    (alert,) = health_alerts()
    assert alert.user_id == world.users["ana"].id and alert.patient_id == world.maria
    assert alert.subject["problem"] == "tokens_rejected"

    # Not one a day: later checks of the same episode add nothing.
    for _ in range(3):
        clock.advance(days=1)
        assert check(engine, clock)["alerts"] == 0
    assert len(health_alerts()) == 1

    # Ana's phone shows it, in English, first name only.
    out = io.StringIO()
    clock.at = alert.due_at + timedelta(minutes=1)
    assert dispatch_once(engine, ConsoleChannel(out), "w", clock(), WIRED).sent == 1
    assert "María's phone is not receiving reminders." in out.getvalue()
    assert f"device {ana_phone}" in out.getvalue()

    # Maria opens the app again: the episode ends. A new problem is a new episode.
    phone(world, "maria", "maria-new")
    assert check(engine, clock)["resolved"] == 1
    assert check(engine, clock)["resolved"] == 0
    assert health_alerts()[0].subject["resolved_at"]
    clock.advance(days=8)
    phone(world, "ana", "ana-phone")  # Ana keeps using the app
    counts = check(engine, clock)
    assert counts["alerts"] == 1
    alerts = health_alerts()
    assert [a.subject["problem"] for a in alerts] == ["tokens_rejected", "not_seen"]
    assert alerts[0].subject["episode"] != alerts[1].subject["episode"]


def test_a_problem_fixed_before_the_alert_went_out_cancels_it(
    ctx: Flask, engine: Engine, world: World, clock: Clock
) -> None:
    phone(world, "ana", "ana-phone")
    phone(world, "maria", "m", notifications_enabled=False)
    assert check(engine, clock)["alerts"] == 1
    phone(world, "maria", "m", notifications_enabled=True)
    assert check(engine, clock)["resolved"] == 1
    (alert,) = health_alerts()
    assert alert.state == "cancelled" and alert.cancelled_reason == "device health restored"


def test_only_caregivers_holding_the_permission_are_alerted(
    ctx: Flask, engine: Engine, world: World, clock: Clock
) -> None:
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.patient_id == world.maria)
    ).one()
    grant.permissions = [p for p in grant.permissions if p != "receive_missed_dose_alerts"]
    db.session.commit()
    counts = check(engine, clock)  # Maria has no device at all
    assert counts["alerts"] == 0 and counts["unreachable"] >= 1
    grant.permissions = [*grant.permissions, "receive_missed_dose_alerts"]
    grant.ended_at = clock()  # revoked
    db.session.commit()
    assert check(engine, clock)["alerts"] == 0
    grant.ended_at = None
    db.session.commit()
    assert check(engine, clock)["alerts"] == 1
    assert health_alerts()[0].subject["problem"] == "no_device"


def test_the_today_view_says_whether_reminders_reach_you(
    api: Api, world: World, clock: Clock
) -> None:
    body = api.get("/me/today", as_="maria").get_json()
    assert body["reminders_reach_you"] == {"ok": False, "problem": "no_device"}
    phone(world, "maria", "m", notifications_enabled=False)
    body = api.get("/me/today", as_="maria").get_json()
    assert body["reminders_reach_you"] == {"ok": False, "problem": "notifications_off"}
    phone(world, "maria", "m")
    body = api.get("/me/today", as_="maria").get_json()
    assert body["reminders_reach_you"] == {"ok": True, "problem": None}
    body = api.get("/me/today", as_="ana").get_json()
    assert body["reminders_reach_you"] == {"ok": False, "problem": "no_device"}
