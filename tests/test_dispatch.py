"""The outbox and the dispatcher against the real firebase-admin client and a local FCM.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL. Time is the injected clock
(``now`` is passed to each step); nothing sleeps to wait for time.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from backend import db
from backend.models import Delivery, Device, Reminder, User
from notifications import cancel, enqueue, register_device
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import (
    DispatchConfig,
    claim_due,
    dispatch_once,
    prepare,
    record,
    write_transaction,
)
from tests import dispatch_proc
from tests.conftest import START, World
from tests.fcmserver import Answer, FcmServer

# -- wiring ------------------------------------------------------------------------------


@pytest.fixture
def maria(world: World) -> dict[str, Any]:
    """Maria with an Android phone and an iPad, and an old phone deactivated long ago."""
    session = db.session()
    user_id = world.users["maria"].id
    phone, _ = register_device(session, user_id, "inst-phone", "maria-phone", "android")
    ipad, _ = register_device(session, user_id, "inst-ipad", "maria-ipad", "ios")
    old, _ = register_device(session, user_id, "inst-old", "maria-old", "android")
    old.active = False
    old.deactivated_reason = "UNREGISTERED"
    session.commit()
    return {"user_id": user_id, "patient_id": world.maria, "phone": phone.id, "ipad": ipad.id}


def dose(
    person: dict[str, Any],
    key: str = "dose:1:2026-11-25:08:00",
    due: datetime = START,
    late: timedelta = timedelta(hours=2),
) -> Reminder:
    row = enqueue(
        db.session(),
        dedupe_key=key,
        kind="dose",
        user_id=person["user_id"],
        patient_id=person["patient_id"],
        due_at=due,
        not_after=due + late,
        subject={"medication_id": 1, "slot_key": "08:00"},
    )
    db.session.commit()
    assert row is not None
    return row


def reload(reminder_id: int) -> Reminder:
    db.session.expire_all()
    row = db.session.get(Reminder, reminder_id)
    assert row is not None
    return row


def deliveries(reminder_id: int) -> list[Delivery]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Delivery).where(Delivery.reminder_id == reminder_id).order_by(Delivery.id)
        )
    )


def device(device_id: int) -> Device:
    db.session.expire_all()
    row = db.session.get(Device, device_id)
    assert row is not None
    return row


# -- the outbox ----------------------------------------------------------------------


def test_enqueueing_the_same_key_twice_creates_one_row(ctx: Flask, maria: dict[str, Any]) -> None:
    first = dose(maria)
    again = enqueue(
        db.session(),
        dedupe_key=first.dedupe_key,
        kind="dose",
        user_id=maria["user_id"],
        due_at=START + timedelta(hours=5),
        not_after=START + timedelta(hours=6),
    )
    db.session.commit()
    assert again is None
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == 1
    assert reload(first.id).due_at == START  # the first one is untouched
    assert first.state == "pending" and first.next_attempt_at == START


def test_cancel_touches_only_pending_rows_that_match(ctx: Flask, maria: dict[str, Any]) -> None:
    a = dose(maria, "dose:1:2026-11-25:08:00")
    b = dose(maria, "dose:1:2026-11-25:20:00", due=START + timedelta(hours=12))
    other = enqueue(
        db.session(),
        dedupe_key="dose:2:2026-11-25:08:00",
        kind="dose",
        user_id=maria["user_id"],
        due_at=START,
        not_after=START + timedelta(hours=2),
        subject={"medication_id": 2},
    )
    assert other is not None
    db.session.commit()
    assert cancel(db.session(), reason="medication stopped", subject={"medication_id": 1}) == 2
    assert cancel(db.session(), reason="again", dedupe_prefix="dose:1:") == 0  # already done
    db.session.commit()
    assert {reload(a.id).state, reload(b.id).state} == {"cancelled"}
    assert reload(a.id).cancelled_reason == "medication stopped"
    assert reload(other.id).state == "pending"
    with pytest.raises(ValueError):
        cancel(db.session(), reason="everything")


# -- sending -------------------------------------------------------------------------


def test_a_due_reminder_goes_once_to_each_active_device_tagged_with_its_id(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    reminder = dose(maria)
    later = dose(maria, "dose:1:2026-11-25:20:00", due=START + timedelta(hours=12))

    result = dispatch_once(engine, channel, "w1", START)

    assert (result.claimed, result.sent, result.pushes_ok) == (1, 1, 2)
    assert sorted(m["token"] for m in fcm.received) == ["maria-ipad", "maria-phone"]
    tag = f"reminder-{reminder.id}"
    for message in fcm.received:
        assert message["android"]["notification"]["tag"] == tag
        assert message["apns"]["headers"]["apns-collapse-id"] == tag
        assert message["data"]["reminder_id"] == str(reminder.id)
        assert message["data"]["patient_id"] == str(maria["patient_id"])
        assert message["data"]["medication_id"] == "1"
        # Lock-screen safe default text, and a TTL that ends at the lateness limit.
        assert message["notification"] == {
            "title": "Reminder",
            "body": "It's time for your medicine.",
        }
        assert message["android"]["ttl"] == "7200s"
        assert message["apns"]["headers"]["apns-expiration"] == str(
            int((START + timedelta(hours=2)).timestamp())
        )
    row = reload(reminder.id)
    assert (row.state, row.attempts, row.sent_at, row.lease_owner) == ("sent", 1, START, None)
    assert [d.fcm_message_id is not None for d in deliveries(reminder.id)] == [True, True]
    assert reload(later.id).state == "pending"

    again = dispatch_once(engine, channel, "w1", START + timedelta(minutes=1))
    assert again.claimed == 0 and len(fcm.received) == 2


def test_a_reminder_past_its_lateness_limit_is_expired_not_sent(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    stale = dose(maria, due=START - timedelta(hours=3))  # not_after = START - 1 h
    result = dispatch_once(engine, channel, "w1", START)
    assert result.expired == 1 and result.claimed == 0
    assert reload(stale.id).state == "expired"
    assert fcm.received == []


def test_a_reminder_that_no_longer_matters_is_cancelled_at_dispatch(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    keep = dose(maria, "dose:1:2026-11-25:08:00")
    logged = dose(maria, "dose:1:2026-11-24:08:00")

    def dose_logged(_db: Any, reminders: Any) -> dict[int, str]:
        return {r.id: "dose logged" for r in reminders if r.id == logged.id}

    checked = DispatchConfig(checks={"dose": (dose_logged,)})
    result = dispatch_once(engine, channel, "w1", START, checked)
    assert (result.cancelled, result.sent) == (1, 1)
    row = reload(logged.id)
    assert (row.state, row.cancelled_reason) == ("cancelled", "dose logged")
    assert {m["data"]["reminder_id"] for m in fcm.received} == {str(keep.id)}


def test_a_person_without_a_reachable_device_is_a_visible_failure(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    db.session.execute(
        Device.__table__.update()
        .where(Device.user_id == maria["user_id"])
        .values(notifications_enabled=False)
    )
    db.session.commit()
    reminder = dose(maria)
    result = dispatch_once(engine, channel, "w1", START)
    assert result.failed == 1
    row = reload(reminder.id)
    assert (row.state, row.last_error) == ("failed", "no_reachable_device")
    assert fcm.received == []


# -- errors --------------------------------------------------------------------------


def test_an_unregistered_token_deactivates_that_device_and_the_other_still_gets_it(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    fcm.script("maria-phone", "UNREGISTERED")
    first = dose(maria)

    result = dispatch_once(engine, channel, "w1", START)

    assert (result.sent, result.devices_deactivated, result.retrying) == (1, 1, 0)
    phone = device(maria["phone"])
    assert (phone.active, phone.deactivated_reason) == (False, "UNREGISTERED")
    assert [m["token"] for m in fcm.received] == ["maria-ipad"]
    codes = {d.device_id: (d.error_code, d.permanent) for d in deliveries(first.id)}
    assert codes == {maria["phone"]: ("UNREGISTERED", True), maria["ipad"]: (None, False)}

    dose(maria, "dose:1:2026-11-25:20:00", due=START + timedelta(hours=1))
    dispatch_once(engine, channel, "w1", START + timedelta(hours=1))
    assert fcm.attempts["maria-phone"] == 1  # never tried again


@pytest.mark.parametrize("code", ["INVALID_ARGUMENT", "SENDER_ID_MISMATCH"])
def test_a_token_fcm_rejects_for_good_deactivates_the_device(
    code: str,
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    maria: dict[str, Any],
) -> None:
    fcm.script("maria-ipad", code)
    dose(maria)
    dispatch_once(engine, channel, "w1", START)
    ipad = device(maria["ipad"])
    assert (ipad.active, ipad.deactivated_reason) == (False, code)
    assert device(maria["phone"]).active


def test_an_invalid_payload_fails_the_reminder_but_keeps_the_devices(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    fcm.script("maria-phone", "INVALID_PAYLOAD")
    fcm.script("maria-ipad", "INVALID_PAYLOAD")
    reminder = dose(maria)
    result = dispatch_once(engine, channel, "w1", START)
    assert (result.failed, result.devices_deactivated) == (1, 0)
    row = reload(reminder.id)
    assert row.state == "failed" and row.last_error and row.last_error.startswith("INVALID_ARG")
    assert device(maria["phone"]).active and device(maria["ipad"]).active


def test_an_fcm_blip_is_absorbed_by_the_client_retry(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    fcm.script("maria-phone", "UNAVAILABLE", then_ok=True)
    fcm.script("maria-ipad", "INTERNAL", then_ok=True)
    reminder = dose(maria)
    result = dispatch_once(engine, channel, "w1", START)
    assert result.sent == 1 and len(fcm.received) == 2
    assert fcm.attempts == {"maria-phone": 2, "maria-ipad": 2}
    assert reload(reminder.id).attempts == 1


def test_an_outage_is_retried_with_backoff_and_sent_once_after_recovery(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    # Three 503s exhaust the client's quick retries (1 + 2); the phone is fine.
    fcm.script("maria-ipad", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", then_ok=True)
    reminder = dose(maria)

    first = dispatch_once(engine, channel, "w1", START)

    assert (first.retrying, first.pushes_ok, first.pushes_failed) == (1, 1, 1)
    row = reload(reminder.id)
    assert row.state == "pending" and row.attempts == 1 and row.sent_at == START
    assert row.last_error and row.last_error.startswith("UNAVAILABLE")
    # 30 s base, equal jitter: between 15 and 30 s.
    assert START + timedelta(seconds=15) <= row.next_attempt_at <= START + timedelta(seconds=30)
    assert dispatch_once(engine, channel, "w1", START + timedelta(seconds=14)).claimed == 0

    second = dispatch_once(engine, channel, "w1", START + timedelta(seconds=31))

    assert (second.claimed, second.sent, second.pushes_ok) == (1, 1, 1)
    assert fcm.tags() == {
        (f"reminder-{reminder.id}", "maria-phone"): 1,
        (f"reminder-{reminder.id}", "maria-ipad"): 1,
    }
    row = reload(reminder.id)
    assert (row.state, row.attempts) == ("sent", 2)
    assert [(d.attempt, d.error_code) for d in deliveries(reminder.id)] == [
        (1, None),
        (1, "UNAVAILABLE"),
        (2, None),
    ]


def test_retries_are_bounded_then_the_reminder_fails(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    fcm.outage = Answer("UNAVAILABLE")
    reminder = dose(maria, late=timedelta(days=1))
    config = DispatchConfig(max_attempts=3)
    at = START
    for _ in range(3):
        dispatch_once(engine, channel, "w1", at, config)
        at = reload(reminder.id).next_attempt_at
    row = reload(reminder.id)
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.last_error and row.last_error.startswith("UNAVAILABLE")
    assert device(maria["phone"]).active  # an outage is nobody's dead token


def test_quota_exceeded_waits_for_retry_after(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    fcm.script("maria-phone", "QUOTA_EXCEEDED", retry_after=300, then_ok=True)
    fcm.script("maria-ipad", "QUOTA_EXCEEDED", retry_after=300, then_ok=True)
    reminder = dose(maria)

    dispatch_once(engine, channel, "w1", START)

    # The client did not sleep on Retry-After: one request each, and the row waits.
    assert fcm.attempts == {"maria-phone": 1, "maria-ipad": 1}
    row = reload(reminder.id)
    assert row.state == "pending" and row.next_attempt_at >= START + timedelta(seconds=300)
    assert dispatch_once(engine, channel, "w1", START + timedelta(seconds=299)).claimed == 0
    assert dispatch_once(engine, channel, "w1", START + timedelta(seconds=301)).sent == 1
    assert len(fcm.received) == 2


# -- leases and concurrency ----------------------------------------------------------


def test_a_crashed_dispatchers_lease_is_reaped_and_another_sends_it(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    reminder = dose(maria)
    lease = timedelta(seconds=120)
    crashed = claim_due(engine, "crashed", START, 500, lease)  # ... and then it died
    assert crashed == [reminder.id]

    assert dispatch_once(engine, channel, "w2", START + timedelta(seconds=60)).claimed == 0
    result = dispatch_once(engine, channel, "w2", START + timedelta(seconds=121))

    assert (result.leases_reaped, result.claimed, result.sent) == (1, 1, 1)
    assert set(fcm.tags().values()) == {1} and len(fcm.received) == 2
    row = reload(reminder.id)
    assert (row.state, row.attempts) == ("sent", 2)  # the crash counted as an attempt


def test_a_claim_takes_at_most_its_limit(ctx: Flask, engine: Engine, maria: dict[str, Any]) -> None:
    """Regression: on PostgreSQL ``id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` was
    re-run per outer row, each run skipping the rows just claimed -- one claim took all."""
    _many_due(maria, 300)
    first = claim_due(engine, "a", START, 100, timedelta(minutes=10))
    second = claim_due(engine, "b", START, 100, timedelta(minutes=10))
    assert len(first) == len(second) == 100 and not set(first) & set(second)
    db.session.expire_all()
    owners = dict(
        db.session.execute(
            select(Reminder.lease_owner, func.count()).group_by(Reminder.lease_owner)
        ).all()
    )
    assert owners == {"a": 100, "b": 100, None: 100}


def test_a_dispatcher_that_lost_its_lease_writes_nothing(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    reminder = dose(maria)
    ids = claim_due(engine, "slow", START, 500, timedelta(seconds=120))
    prepared = prepare(engine, "slow", ids, START)
    results = channel.send(prepared.pushes)  # slow sends; meanwhile its lease is taken over
    later = START + timedelta(seconds=200)
    taken = dispatch_once(engine, channel, "fast", later)
    assert taken.sent == 1

    late = record(engine, "slow", later, prepared, results, DispatchConfig())

    assert (late.lost_lease, late.sent) == (1, 0)
    assert reload(reminder.id).state == "sent"
    # The documented window: both sent; the phone shows one, because the tag is the same.
    assert fcm.tags() == {
        (f"reminder-{reminder.id}", "maria-phone"): 2,
        (f"reminder-{reminder.id}", "maria-ipad"): 2,
    }


def _many_due(maria: dict[str, Any], n: int) -> None:
    rows = [
        {
            "dedupe_key": f"bulk:{i}",
            "kind": "dose",
            "user_id": maria["user_id"],
            "patient_id": maria["patient_id"],
            "subject": {},
            "due_at": START - timedelta(seconds=i % 60),
            "not_after": START + timedelta(hours=2),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": START - timedelta(seconds=i % 60),
            "created_at": START,
        }
        for i in range(n)
    ]
    db.session.execute(Reminder.__table__.insert(), rows)
    db.session.commit()


def _assert_each_exactly_once(fcm: FcmServer, n: int) -> None:
    tags = fcm.tags()
    assert len(tags) == 2 * n, f"lost: {2 * n - len(tags)}"
    assert max(tags.values()) == 1, f"duplicates: {sum(v - 1 for v in tags.values())}"
    states = dict(
        db.session.execute(select(Reminder.state, func.count()).group_by(Reminder.state)).all()
    )
    assert states == {"sent": n}


def test_two_dispatcher_threads_send_every_reminder_to_every_device_exactly_once(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    n = 2000
    _many_due(maria, n)
    config = DispatchConfig(batch_size=100)
    start = threading.Barrier(2)
    claimed: dict[str, int] = {}

    def worker(owner: str) -> None:
        start.wait()
        total = 0
        while (result := dispatch_once(engine, channel, owner, START, config)).claimed:
            total += result.claimed
        claimed[owner] = total

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(claimed.values()) == n and all(claimed.values())  # both took a share
    _assert_each_exactly_once(fcm, n)


def _schema(engine: Engine) -> str | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _people_with_reminders(n_people: int, per_person: int) -> dict[str, int]:
    """``n_people`` users with one phone each and ``per_person`` due reminders each;
    returns {token: reminders}."""
    session = db.session()
    users = [User(firebase_uid=f"bulk-{i}", created_at=START) for i in range(n_people)]
    session.add_all(users)
    session.flush()
    for u in users:
        register_device(session, u.id, f"inst-{u.id}", f"tok-{u.id}", "android")
    rows = [
        {
            "dedupe_key": f"bulk:{u.id}:{j}",
            "kind": "dose",
            "user_id": u.id,
            "subject": {},
            "due_at": START - timedelta(seconds=j % 60),
            "not_after": START + timedelta(hours=2),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": START - timedelta(seconds=j % 60),
            "created_at": START,
        }
        for u in users
        for j in range(per_person)
    ]
    for i in range(0, len(rows), 5000):
        session.execute(Reminder.__table__.insert(), rows[i : i + 5000])
    session.commit()
    return {f"tok-{u.id}": per_person for u in users}


def test_four_dispatcher_processes_send_each_reminder_to_each_device_exactly_once(
    ctx: Flask, engine: Engine, fcm: FcmServer
) -> None:
    """10,000 due reminders on PostgreSQL (2,000 on SQLite, whose writers take turns),
    4 dispatcher processes started at once: every device gets every reminder once."""
    procs = 4
    n = 10_000 if engine.dialect.name == "postgresql" else 2_000
    expected = _people_with_reminders(100, n // 100)
    url = engine.url.render_as_string(hide_password=False)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, spawn.Pool(procs) as pool:
        start = manager.Barrier(procs)
        args = (url, _schema(engine), fcm.fcm_url_template)
        pending = [
            pool.apply_async(dispatch_proc.run, (*args, f"p{i}", START, 250, start))
            for i in range(procs)
        ]
        totals = [p.get(timeout=120) for p in pending]
    assert sum(t["claimed"] for t in totals) == n
    assert sum(t["lost_lease"] for t in totals) == 0
    assert all(t["claimed"] for t in totals)  # each process took a share
    tags = fcm.tags()
    assert len(tags) == n, f"lost: {n - len(tags)}"
    assert max(tags.values()) == 1, f"duplicates: {sum(v - 1 for v in tags.values())}"
    assert Counter(token for _, token in tags) == expected
    db.session.expire_all()
    states = dict(
        db.session.execute(select(Reminder.state, func.count()).group_by(Reminder.state)).all()
    )
    assert states == {"sent": n}


def test_on_sqlite_a_claim_holds_the_write_lock_from_its_first_statement(
    ctx: Flask, engine: Engine
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL claims with FOR UPDATE SKIP LOCKED")
    import sqlite3

    other = sqlite3.connect(engine.url.database or "", timeout=0)
    try:
        with write_transaction(engine) as conn:
            conn.execute(select(func.count()).select_from(Reminder))  # a read, no write yet
            # A deferred transaction would let another writer in here, then fail one of the
            # two at its UPDATE; BEGIN IMMEDIATE already holds the lock.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.rollback()
    finally:
        other.close()


def _wait_for(condition: Any, timeout_s: float, what: str) -> None:
    """Process coordination (not waiting for time): poll a condition, briefly."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # sleep-ok: polling another process, not waiting for time


def test_a_dispatcher_process_killed_mid_batch_loses_nothing(
    ctx: Flask, engine: Engine, channel: FcmChannel, fcm: FcmServer, maria: dict[str, Any]
) -> None:
    """A dispatcher process is SIGKILLed inside ``send_each``: FCM has accepted part of its
    batch, nothing of the batch is recorded. Its rows stay claimed until the lease runs out
    (no one else touches them meanwhile), then another dispatcher takes them over and sends
    them. None is lost.

    A (reminder, device) may arrive twice, and only this way: it is in the killed batch and
    FCM accepted it before the kill -- the one documented window (notifications/dispatch.py:
    accepted by FCM, not yet recorded). The repeat carries the same Android tag / APNs
    collapse id ``reminder-N`` as the first, so the phone replaces the notification instead
    of showing it twice. Rows outside the killed batch arrive exactly once.
    """
    n, batch = 300, 100
    _many_due(maria, n)
    lease = timedelta(minutes=10)  # what dispatch_proc uses
    fcm.stall = threading.Event()
    url = engine.url.render_as_string(hide_password=False)
    spawn = multiprocessing.get_context("spawn")
    victim = spawn.Process(
        target=dispatch_proc.run,
        args=(url, _schema(engine), fcm.fcm_url_template, "victim", START, batch),
    )
    victim.start()
    try:
        # Inside send_each: FCM has accepted some of the batch and holds its answers.
        _wait_for(lambda: len(fcm.received) >= 10, 15, "the victim to reach FCM")
        os.kill(victim.pid or 0, signal.SIGKILL)
        victim.join(timeout=5)
        assert victim.exitcode == -signal.SIGKILL
    finally:
        if victim.is_alive():
            victim.kill()
        fcm.stall.set()
        fcm.stall = None
    accepted_before_kill = fcm.tags()
    db.session.expire_all()
    killed = set(
        db.session.scalars(
            select(Reminder.id).where(Reminder.state == "claimed", Reminder.lease_owner == "victim")
        )
    )
    assert len(killed) == batch
    assert {int(tag.split("-")[1]) for tag, _ in accepted_before_kill} <= killed

    # Before the lease runs out, the survivor sends everything else but not the victim's.
    before = START + lease / 2
    while dispatch_once(engine, channel, "survivor", before).claimed:
        pass
    db.session.expire_all()
    assert len(list(db.session.scalars(select(Reminder.id).where(Reminder.state == "sent")))) == (
        n - batch
    )
    # After it, the victim's rows are reaped and taken over.
    after = START + lease + timedelta(seconds=1)
    reaped = dispatch_once(engine, channel, "survivor", after)
    assert reaped.leases_reaped == batch
    while dispatch_once(engine, channel, "survivor", after).claimed:
        pass

    tags = fcm.tags()
    assert len(tags) == 2 * n, f"lost: {2 * n - len(tags)}"
    assert max(tags.values()) <= 2
    twice = {key for key, count in tags.items() if count == 2}
    assert twice == set(accepted_before_kill)  # only the documented window
    states = dict(
        db.session.execute(select(Reminder.state, func.count()).group_by(Reminder.state)).all()
    )
    assert states == {"sent": n}
    attempts = dict(db.session.execute(select(Reminder.id, Reminder.attempts)).all())
    assert {i for i, a in attempts.items() if a == 2} == killed
