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
- sweep, every 15 min: the worklist sweep's computed rules (``backend.services.sweep``);
- outbox, every 15 s: the outbox's depth for the metrics (pending and claimed by kind, the
  due backlog and its oldest age).

Every job is timed and counted (``backend.metrics``: duration, failures, last success); the
dispatch job also beats the worker's heartbeat and turns each batch's result into the push,
claim, lease and lateness metrics, and logs one line with the counts when it did anything.
An idle worker logs nothing (APScheduler's per-run lines are off, ``backend.logs``).

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
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import metrics
from backend.clock import now
from backend.db import write_transaction
from backend.reminders.audience import may_disclose
from backend.reminders.counts import count_for
from backend.reminders.device_health import check_device_health
from backend.reminders.planner import run_planner
from backend.reminders.relevance import CHECKS
from backend.services import today_cache
from backend.services.sweep import run_sweep
from notifications.channels import Channel
from notifications.dispatch import (
    BatchResult,
    DispatchConfig,
    drain,
    expire_overdue,
    reap_expired_leases,
)
from notifications.outbox import REMINDER_KINDS, Reminder
from notifications.texts import renderer

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def wired(config: DispatchConfig | None = None) -> DispatchConfig:
    """The dispatcher's settings with the reminder domain wired in: its relevance checks and
    the localized renderer with the counts pushes name. The one place both meet."""
    render = renderer(count=count_for, disclose=may_disclose)
    return replace(config or DispatchConfig(), checks=CHECKS, render=render)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def timed(job: str, run: Callable[[], None]) -> Callable[[], None]:
    """``run`` with its duration, failures and last success in the metrics."""

    def job_run() -> None:
        started = time.perf_counter()
        try:
            run()
        except Exception:
            metrics.JOB_FAILURES.labels(job).inc()
            raise
        finally:
            metrics.JOB_DURATION.labels(job).observe(time.perf_counter() - started)
        metrics.JOB_LAST_SUCCESS.labels(job).set_to_current_time()

    job_run.__name__ = job
    return job_run


def count_batch(result: BatchResult) -> None:
    """A dispatch run's result into the metrics (no ids: kinds and FCM's codes only)."""
    metrics.CLAIMED.inc(result.claimed)
    metrics.LOST_LEASES.inc(result.lost_lease)
    metrics.REAPED.inc(result.leases_reaped)
    metrics.DEACTIVATED.inc(result.devices_deactivated)
    for outcome in ("sent", "retrying", "failed", "expired", "cancelled"):
        if n := getattr(result, outcome):
            metrics.OUTCOMES.labels(outcome).inc(n)
    if result.pushes_ok:
        metrics.PUSHES.labels("accepted", "").inc(result.pushes_ok)
    for code, n in result.push_errors.items():
        metrics.PUSHES.labels("refused", metrics.error_code_label(code)).inc(n)
    for kind, seconds in result.lateness:
        metrics.LATENESS.labels(kind if kind in REMINDER_KINDS else "other").observe(seconds)


def measure_outbox(engine: Engine) -> None:
    """The outbox's depth into the gauges: one grouped query over pending and claimed rows
    (a scan: most rows are pending or sent), one for the oldest due (the pending index)."""
    at = now()
    due = (Reminder.state == "pending") & (Reminder.next_attempt_at <= at)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Reminder.state,
                Reminder.kind,
                func.count(),
                func.sum(case((due, 1), else_=0)),
            )
            .where(Reminder.state.in_(("pending", "claimed")))
            .group_by(Reminder.state, Reminder.kind)
        ).all()
        oldest = conn.execute(select(func.min(Reminder.next_attempt_at)).where(due)).scalar()
    depth = {(state, kind): (n, int(d or 0)) for state, kind, n, d in rows}
    for state in ("pending", "claimed"):
        for kind in REMINDER_KINDS:
            metrics.OUTBOX.labels(state, kind).set(depth.get((state, kind), (0, 0))[0])
    for kind in REMINDER_KINDS:
        metrics.OUTBOX_DUE.labels(kind).set(depth.get(("pending", kind), (0, 0))[1])
    metrics.OUTBOX_OLDEST_DUE.set((at - oldest).total_seconds() if oldest else 0)


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
    outbox_every: timedelta = timedelta(seconds=15),
    stop: threading.Event | None = None,
) -> BlockingScheduler:
    owner = owner or worker_id()
    config = wired(config)
    stopping = stop or threading.Event()

    def batch_done() -> bool:
        # Asked after every batch: a long drain through a backlog still beats the heart.
        metrics.HEARTBEAT.set_to_current_time()
        return stopping.is_set()

    def dispatch() -> None:
        metrics.HEARTBEAT.set_to_current_time()
        result = drain(engine, channel, owner, config, should_stop=batch_done)
        count_batch(result)
        if result.claimed or result.expired or result.leases_reaped:
            counts = result.counts()
            log.info(
                "dispatch: %d claimed, %d sent, %d retrying, %d failed, %d expired, %d cancelled",
                *(counts[k] for k in ("claimed", "sent", "retrying", "failed", "expired")),
                counts["cancelled"],
                extra={"event": "dispatch", **counts},
            )

    def reap() -> None:
        at = now()
        reaped, expired = reap_expired_leases(engine, at), expire_overdue(engine, at)
        metrics.REAPED.inc(reaped)
        metrics.OUTCOMES.labels("expired").inc(expired)
        if reaped or expired:
            log.info(
                "reaped %d leases, expired %d overdue reminders",
                reaped,
                expired,
                extra={"event": "reap", "leases_reaped": reaped, "expired": expired},
            )

    def device_health() -> None:
        with write_transaction(engine) as conn, Session(bind=conn) as db:
            counts = check_device_health(db, now())
            db.flush()
        if counts["alerts"] or counts["resolved"]:
            log.info("device health %s", counts, extra={"event": "device_health", **counts})

    def plan() -> None:
        counts = run_planner(engine)
        if set(counts) - {"patients"}:
            log.info("planned %s", counts, extra={"event": "plan", **counts})

    def sweep() -> None:
        counts = run_sweep(engine)
        log.info("worklist sweep: unresolved %s", counts, extra={"event": "sweep"})
        with write_transaction(engine) as conn, Session(bind=conn) as db:
            today_cache.prune(db, now().date())  # the today view's days long gone

    def outbox() -> None:
        measure_outbox(engine)

    scheduler = BlockingScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
    every = dispatch_every.total_seconds()
    scheduler.add_job(
        timed("dispatch", dispatch), "interval", seconds=every, id="dispatch", next_run_time=now()
    )
    scheduler.add_job(
        timed("reap", reap), "interval", seconds=reap_every.total_seconds(), id="reap"
    )
    scheduler.add_job(
        timed("plan", plan),
        "interval",
        seconds=plan_every.total_seconds(),
        id="plan",
        next_run_time=now(),
    )
    scheduler.add_job(
        timed("outbox", outbox),
        "interval",
        seconds=outbox_every.total_seconds(),
        id="outbox",
        next_run_time=now(),
    )
    scheduler.add_job(
        timed("device_health", device_health),
        "interval",
        seconds=device_health_every.total_seconds(),
        id="device_health",
        next_run_time=now() + timedelta(seconds=30),
    )
    scheduler.add_job(
        timed("sweep", sweep),
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
    metrics_bind: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; the batch in hand is finished first. With ``metrics_bind``
    (``host:port``) the worker's Prometheus metrics are served there, in a thread."""
    if metrics_bind:
        port = metrics.serve_worker_metrics(metrics_bind)
        log.info("metrics on port %d", port, extra={"metrics_port": port})
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
