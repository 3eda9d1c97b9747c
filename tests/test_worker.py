"""``carecompanion worker``: the scheduler's settings, and a real process stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from backend.db import make_engine
from backend.migrate import upgrade
from backend.models import Device, Reminder, User
from notifications.channels.console import ConsoleChannel
from notifications.worker import build_scheduler


def test_the_jobs_never_overlap_and_missed_runs_collapse(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/w.sqlite")
    scheduler = build_scheduler(engine, ConsoleChannel(), owner="w")
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {"dispatch", "reap", "device_health"} <= set(jobs)
    # Applied to every job when the scheduler starts.
    defaults = scheduler._job_defaults
    assert defaults["coalesce"] is True and defaults["max_instances"] == 1
    assert jobs["dispatch"].trigger.interval == timedelta(seconds=2)
    engine.dispose()


def test_the_worker_sends_due_reminders_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/worker.sqlite"
    engine = make_engine(url)
    upgrade(engine)
    # The worker runs on the system clock, so the reminder is due by the real clock.
    due = datetime.now(UTC) - timedelta(minutes=1)
    with engine.begin() as conn:
        user_id = conn.execute(
            User.__table__.insert().values(firebase_uid="w-maria", created_at=due)
        ).inserted_primary_key[0]
        conn.execute(
            Device.__table__.insert().values(
                user_id=user_id, installation_id="i", fcm_token="t", platform="android",
                notifications_enabled=True, active=True, created_at=due, last_seen_at=due,
            )
        )  # fmt: skip
        conn.execute(
            Reminder.__table__.insert().values(
                dedupe_key="w:1", kind="dose", user_id=user_id, subject={}, due_at=due,
                not_after=due + timedelta(hours=2), state="pending", attempts=0,
                next_attempt_at=due, created_at=due,
            )
        )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    env.update(DATABASE_URL=url, CARECOMPANION_ENV="development", LOG_LEVEL="INFO")
    cmd = [sys.executable, "-c", "from backend.cli import main; main()", "worker"]
    proc = subprocess.Popen(
        [*cmd, "--channel", "console", "--every", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        state = "pending"
        deadline = time.monotonic() + 30  # waiting on another process, not on our clock
        while state != "sent" and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # sleep-ok: polling the worker process
            with engine.connect() as conn:
                state = conn.execute(select(Reminder.state)).scalar_one()
        assert state == "sent"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "It's time for your medicine." in out and "tag reminder-1" in out
    assert "worker stopped" in out
    engine.dispose()
