"""Dispatch throughput, one process: our dispatcher vs raw ``send_each`` of the same payloads.

    python benchmarks/dispatch_throughput.py [--db sqlite|postgresql] [--n 5000] [--rounds 3]

What it does, in one run, and then stops by itself:

1. starts the local FCM-v1-compatible server of the test suite on 127.0.0.1, in its own
   process so it does not compete for this one's GIL, and builds one
   firebase app pointed at it (the real firebase-admin client, no network beyond 127.0.0.1);
2. creates a fresh database -- a SQLite file in a temporary folder, or a throwaway schema in
   the PostgreSQL at 127.0.0.1:5432/test (dropped afterwards) -- migrated with our migrations,
   with N users, one device each;
3. per round, alternating the order so warm-up and drift hit both alike:
   - raw: ``messaging.send_each`` of the N messages in batches of 500 (messages built
     beforehand, exactly as the dispatcher builds them);
   - ours: N due reminders enqueued, then ``drain()`` claims, re-checks, renders, sends
     and records them all (enqueueing is not timed: the planner's cost, not dispatch's);
4. prints both rates, the ratio (goal >= 0.8x) and checks every reminder arrived once.

Both go through the same FcmChannel session (same pool and retry adapter), so the ratio is
what our database work costs on top of the HTTP calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firebase_admin import messaging

from backend.clock import set_clock
from backend.db import make_engine
from backend.migrate import upgrade
from backend.models import Device, Reminder, User
from benchmarks._server import LocalFcm
from notifications.channels import Push
from notifications.channels.fcm import FcmChannel, build_message
from notifications.dispatch import DispatchConfig, default_render, drain
from tests.fcmserver import local_fcm_app

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
RAW_IDS = 10**9  # reminder ids of the raw messages, apart from the outbox's


def make_db(kind: str, tmp: str) -> tuple[Engine, str | None]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp}/bench.sqlite")
        upgrade(engine)
        return engine, None
    schema = f"cc_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    return engine, schema


def seed_people(engine: Engine, n: int) -> list[tuple[int, int, str]]:
    with engine.begin() as conn:
        conn.execute(
            User.__table__.insert(),
            [{"firebase_uid": f"bench-{i}", "created_at": AT} for i in range(n)],
        )
        users = conn.execute(select(User.id).order_by(User.id)).scalars().all()
        conn.execute(
            Device.__table__.insert(),
            [
                {
                    "user_id": uid,
                    "installation_id": "i",
                    "fcm_token": f"tok-{uid}",
                    "platform": "android",
                    "notifications_enabled": True,
                    "active": True,
                    "created_at": AT,
                    "last_seen_at": AT,
                }
                for uid in users
            ],
        )
        rows = conn.execute(select(Device.id, Device.user_id, Device.fcm_token)).all()
    return [(d, u, t) for d, u, t in rows]


def enqueue_due(engine: Engine, users: list[int], round_no: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            Reminder.__table__.insert(),
            [
                {
                    "dedupe_key": f"bench:{round_no}:{uid}",
                    "kind": "dose",
                    "user_id": uid,
                    "subject": {"medication_id": 1, "slot_key": "08:00"},
                    "due_at": AT,
                    "not_after": AT + timedelta(hours=2),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": AT,
                    "created_at": AT,
                }
                for uid in users
            ],
        )


def raw_messages(devices: list[tuple[int, int, str]]) -> list[messaging.Message]:
    title, body, _ = default_render(Reminder(kind="dose"), User())
    messages = []
    for i, (device_id, _user_id, token) in enumerate(devices):
        data = {"reminder_id": str(RAW_IDS + i), "kind": "dose", "medication_id": "1"}
        data["slot_key"] = "08:00"
        push = Push(
            RAW_IDS + i, device_id, token, "android", title, body, data, AT + timedelta(hours=2)
        )
        messages.append(build_message(push))
    return messages


def time_raw(channel: FcmChannel, messages: list[messaging.Message]) -> float:
    started = time.perf_counter()
    for start in range(0, len(messages), 500):
        batch = messaging.send_each(messages[start : start + 500], app=channel.app)
        assert batch.failure_count == 0, batch.responses[0].exception
    return time.perf_counter() - started


def time_ours(engine: Engine, channel: FcmChannel, users: list[int], round_no: int) -> float:
    enqueue_due(engine, users, round_no)
    started = time.perf_counter()
    total = drain(engine, channel, "bench", DispatchConfig(batch_size=500))
    elapsed = time.perf_counter() - started
    assert total.sent == len(users) and total.pushes_failed == 0, total
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    set_clock(lambda: AT)
    with LocalFcm() as fcm:
        channel = FcmChannel(local_fcm_app(fcm.url, timeout_s=10))
        with tempfile.TemporaryDirectory() as tmp:
            engine, schema = make_db(args.db, tmp)
            try:
                devices = seed_people(engine, args.n)
                users = [u for _, u, _ in devices]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    messages = raw_messages(devices)
                time_raw(channel, messages[:500])  # warm-up: connections, imports
                raw_times, our_times = [], []
                for r in range(args.rounds):
                    if r % 2 == 0:
                        raw_times.append(time_raw(channel, messages))
                        our_times.append(time_ours(engine, channel, users, r))
                    else:
                        our_times.append(time_ours(engine, channel, users, r))
                        raw_times.append(time_raw(channel, messages))
                tags = fcm.stop()
                ours = [v for (tag, _), v in tags.items() if int(tag.split("-")[1]) < RAW_IDS]
                dupes = sum(v - 1 for v in ours)
                with engine.connect() as conn:
                    sent = conn.execute(
                        select(func.count()).select_from(Reminder).where(Reminder.state == "sent")
                    ).scalar_one()
            finally:
                engine.dispose()
                if schema:
                    admin = create_engine(PG_URL)
                    with admin.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()

    raw_rate = args.n / min(raw_times)
    our_rate = args.n / min(our_times)
    print(f"dispatch throughput, {args.n} pushes, {args.db}, best of {args.rounds} rounds")
    print(f"  raw send_each : {raw_rate:8.0f} msg/s   rounds: " + _fmt(raw_times))
    print(f"  our dispatcher: {our_rate:8.0f} msg/s   rounds: " + _fmt(our_times))
    print(f"  ratio ours/raw: {our_rate / raw_rate:.2f}x (goal >= 0.80x)")
    print(f"  reminders sent: {sent} of {args.n * args.rounds}; duplicate pushes: {dupes}")
    print(f"  python {sys.version.split()[0]}, cpus {os.cpu_count()}")


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}s" for t in times)


if __name__ == "__main__":
    main()
