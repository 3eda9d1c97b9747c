"""The worker process: APScheduler running our short periodic jobs. All state is in the DB.

One ``BlockingScheduler`` in a dedicated process (``carecompanion worker``), never inside
gunicorn or the reloader. APScheduler's memory job store holds only the job definitions;
reminders live in the outbox, so a restart loses nothing and two workers are safe (they
coordinate through row claims).

- dispatch, every few seconds: drain due reminders, batch after batch while full batches
  keep coming;
- reap, every 30 s: return claimed rows whose lease expired (a dead worker's) to pending;
- plan, every 5 min: the planner's rolling 48 h horizon (idempotent: two workers planning
  at once create each row once);
- device_health, every 15 min: people whose phones cannot receive pushes; their caregivers
  are alerted once per episode (``backend.reminders.device_health``);
- sweep, every 15 min: the worklist sweep's computed rules (``backend.services.sweep``).

This module is the composition root: it hands the dispatcher the domain's relevance checks
(``backend.reminders.relevance.CHECKS``) and the localized renderer (:func:`wired`).

``coalesce=True`` and ``max_instances=1``: a slow run is never doubled up and missed runs
collapse into one. SIGTERM (and Ctrl-C) stops after the batch in hand: the dispatch loop
checks the stop flag between batches and the scheduler waits for the running job.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend.clock import now
from backend.db import write_transaction
from backend.reminders.audience import may_disclose
from backend.reminders.device_health import check_device_health
from backend.reminders.morning_summary import count_for
from backend.reminders.planner import run_planner
from backend.reminders.relevance import CHECKS
from backend.services.sweep import run_sweep
from notifications.channels import Channel
from notifications.dispatch import DispatchConfig, drain, expire_overdue, reap_expired_leases
from notifications.texts import renderer

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def wired(config: DispatchConfig | None = None) -> DispatchConfig:
    """The dispatcher's settings with the reminder domain wired in: its relevance checks and
    the localized renderer with the morning summary's count. The one place both meet."""
    render = renderer(summary_count=count_for, disclose=may_disclose)
    return replace(config or DispatchConfig(), checks=CHECKS, render=render)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_scheduler(
    engine: Engine,
    channel: Channel,
    *,
    owner: str | None = None,
    config: DispatchConfig | None = None,
    dispatch_every: timedelta = timedelta(seconds=2),
    reap_every: timedelta = timedelta(seconds=30),
    device_health_every: timedelta = timedelta(minutes=15),
    plan_every: timedelta = timedelta(minutes=5),
    sweep_every: timedelta = timedelta(minutes=15),
    stop: threading.Event | None = None,
) -> BlockingScheduler:
    owner = owner or worker_id()
    config = wired(config)
    stopping = stop or threading.Event()

    def dispatch() -> None:
        result = drain(engine, channel, owner, config, should_stop=stopping.is_set)
        if result.claimed or result.expired or result.leases_reaped:
            log.info("dispatch %s", result)

    def reap() -> None:
        at = now()
        reaped, expired = reap_expired_leases(engine, at), expire_overdue(engine, at)
        if reaped or expired:
            log.info("reaped %d leases, expired %d overdue reminders", reaped, expired)

    def device_health() -> None:
        with write_transaction(engine) as conn, Session(bind=conn) as db:
            counts = check_device_health(db, now())
            db.flush()
        if counts["alerts"] or counts["resolved"]:
            log.info("device health %s", counts)

    def plan() -> None:
        counts = run_planner(engine)
        if set(counts) - {"patients"}:
            log.info("planned %s", counts)

    def sweep() -> None:
        counts = run_sweep(engine)
        log.info("worklist sweep: unresolved %s", counts)

    scheduler = BlockingScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
    every = dispatch_every.total_seconds()
    scheduler.add_job(dispatch, "interval", seconds=every, id="dispatch", next_run_time=now())
    scheduler.add_job(reap, "interval", seconds=reap_every.total_seconds(), id="reap")
    scheduler.add_job(
        plan, "interval", seconds=plan_every.total_seconds(), id="plan", next_run_time=now()
    )
    scheduler.add_job(
        device_health,
        "interval",
        seconds=device_health_every.total_seconds(),
        id="device_health",
        next_run_time=now() + timedelta(seconds=30),
    )
    scheduler.add_job(
        sweep,
        "interval",
        seconds=sweep_every.total_seconds(),
        id="sweep",
        next_run_time=now() + timedelta(seconds=60),
    )
    return scheduler


def run_worker(
    engine: Engine,
    channel: Channel,
    *,
    config: DispatchConfig | None = None,
    dispatch_every: timedelta = timedelta(seconds=2),
) -> None:
    """Run until SIGTERM/SIGINT; the batch in hand is finished first."""
    stop = threading.Event()
    scheduler = build_scheduler(
        engine, channel, config=config, dispatch_every=dispatch_every, stop=stop
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand", signum)
        stop.set()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("worker started (channel %s)", channel.name)
    scheduler.start()
    log.info("worker stopped")
