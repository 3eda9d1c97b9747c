"""``carecompanion stats reminders``: lateness, states, failure and open rates for a period.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import insert, update

from backend import db
from backend.cli import cli
from backend.models import Delivery, Reminder
from notifications import enqueue
from notifications.stats import format_stats, percentile, reminder_stats
from tests.conftest import START, Clock, World

_keys = itertools.count(1)


def add(
    world: World, n: int, kind: str = "dose", due_in: timedelta = timedelta(0), **values: Any
) -> list[int]:
    ids = []
    for _ in range(n):
        due = START + due_in
        row = enqueue(
            db.session(),
            dedupe_key=f"s:{next(_keys)}",
            kind=kind,
            user_id=world.users["maria"].id,
            patient_id=world.maria,
            due_at=due,
            not_after=due + timedelta(hours=2),
        )
        assert row is not None
        ids.append(row.id)
    if values:
        resolved = {k: (v(START + due_in) if callable(v) else v) for k, v in values.items()}
        db.session.execute(update(Reminder).where(Reminder.id.in_(ids)).values(**resolved))
    db.session.commit()
    return ids


def test_percentiles_are_nearest_rank() -> None:
    values = [timedelta(seconds=s) for s in range(1, 101)]
    assert percentile(values, 50) == timedelta(seconds=50)
    assert percentile(values, 95) == timedelta(seconds=95)
    assert percentile(values[:1], 95) == timedelta(seconds=1)
    assert percentile([], 50) is None


def test_the_numbers_for_a_period(ctx: Flask, world: World) -> None:
    # 20 sent: 1 s, 2 s, ... 20 s late; 4 of them opened.
    sent = []
    for i in range(1, 21):
        sent += add(world, 1, state="sent", sent_at=lambda due, i=i: due + timedelta(seconds=i))
    db.session.execute(update(Reminder).where(Reminder.id.in_(sent[:4])).values(opened_at=START))
    add(world, 5, state="failed", last_error="UNREGISTERED")
    add(world, 3, kind="appointment", state="expired")
    add(world, 2, kind="refill")  # pending
    add(world, 7, due_in=timedelta(days=3), state="sent", sent_at=lambda d: d)  # outside
    db.session.execute(
        insert(Delivery),
        [
            {"reminder_id": sent[0], "attempt": 1, "fcm_message_id": "m1", "at": START},
            {"reminder_id": sent[1], "attempt": 1, "error_code": "UNAVAILABLE", "at": START},
            {"reminder_id": sent[1], "attempt": 2, "fcm_message_id": "m2", "at": START},
        ],
    )
    db.session.commit()

    stats = reminder_stats(db.session(), START - timedelta(hours=1), START + timedelta(days=1))
    assert stats.total == 30
    assert stats.by_state == {"sent": 20, "failed": 5, "expired": 3, "pending": 2}
    assert stats.by_kind["appointment"] == {"expired": 3}
    assert stats.lateness.count == 20
    assert stats.lateness.p50 == timedelta(seconds=10)
    assert stats.lateness.p95 == timedelta(seconds=19)
    assert stats.lateness.max == timedelta(seconds=20)
    assert stats.failure_rate == 5 / 25
    assert stats.expired_rate == 3 / 28
    assert stats.open_rate == 4 / 20
    assert (stats.pushes_accepted, stats.pushes_refused) == (2, 1)
    assert stats.push_errors == {"UNAVAILABLE": 1}

    table = format_stats(stats)
    assert "p50 10.0s  p95 19.0s  max 20.0s" in table
    assert "failure rate (failed / sent+failed): 20.0%" in table
    assert "open rate (opened / sent): 20.0%" in table
    assert "UNAVAILABLE 1" in table

    empty = reminder_stats(db.session(), START + timedelta(days=10), START + timedelta(days=11))
    assert empty.total == 0 and empty.failure_rate is None and empty.open_rate is None
    assert "p50 -" in format_stats(empty)


def test_the_command_prints_the_table(ctx: Flask, world: World, clock: Clock) -> None:
    add(world, 3, state="sent", sent_at=lambda due: due + timedelta(minutes=2))
    runner = ctx.test_cli_runner()
    result = runner.invoke(
        cli, args=["stats", "reminders", "--since", "2026-11-25", "--until", "2026-11-26T00:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "Reminders due 2026-11-25T00:00:00+00:00 .. 2026-11-26T00:00:00+00:00: 3" in result.output
    )
    assert "p50 2.0min" in result.output
    # Default period: the last 24 h by the (injected) clock.
    clock.advance(minutes=1)
    result = runner.invoke(cli, args=["stats", "reminders"])
    assert result.exit_code == 0 and ": 3" in result.output.splitlines()[0]
    bad = runner.invoke(cli, args=["stats", "reminders", "--since", "yesterday"])
    assert bad.exit_code != 0 and "not an ISO date" in bad.output
    backwards = runner.invoke(cli, args=["stats", "reminders", "--since", "2026-12-01"])
    assert backwards.exit_code != 0
