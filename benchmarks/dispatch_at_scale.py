"""N reminders due in the same minute, 4 dispatcher processes on PostgreSQL, vs raw
``send_each`` over 4 processes, vs the naive design (one APScheduler job per reminder).

    python benchmarks/dispatch_at_scale.py [--n 100000] [--procs 4] [--naive-n N]

1. the local FCM-v1 server of the test suite in its own process (benchmarks/_server.py's
   ``LocalFcm``); a throwaway PostgreSQL schema (benchmarks/_seed.py);
   N users with one device each and N due reminders;
2. ours: ``--procs`` processes of tests/dispatch_proc.py (claim with SKIP LOCKED, re-check,
   render, send_each in batches of 500, record) started at once; time until all are done;
   duplicates and lost counted from what the server accepted, per (tag, token);
3. raw: the same N messages, pre-built, ``send_each`` in batches of 500 over ``--procs``
   processes; time (goal: ours <= 1.25x);
4. naive: one APScheduler job per reminder with default settings (BackgroundScheduler,
   MemoryJobStore, 10 threads, misfire_grace_time 1 s, no coalescing), all due at the same
   instant, each ``messaging.send`` of one message: how many it runs late or drops (missed).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import threading
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from firebase_admin import messaging

from backend.clock import set_clock
from backend.migrate import upgrade
from benchmarks._seed import PG_URL, throwaway_schema
from benchmarks._server import LocalFcm
from benchmarks.dispatch_throughput import (
    AT,
    RAW_IDS,
    enqueue_due,
    raw_messages,
    seed_people,
)
from tests import dispatch_proc
from tests.fcmserver import local_fcm_app

NAIVE_IDS = 2 * 10**9


def _raw_worker(
    fcm_url: str, devices: list[tuple[int, int, str]], offset: int, start: Any
) -> float:
    app = local_fcm_app(fcm_url, timeout_s=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        messages = raw_messages(devices)
    for i, m in enumerate(messages):
        m.data["reminder_id"] = str(RAW_IDS + offset + i)
        assert m.android is not None and m.android.notification is not None
        m.android.notification.tag = f"reminder-{RAW_IDS + offset + i}"
    start.wait()
    t0 = time.perf_counter()
    for s in range(0, len(messages), 500):
        batch = messaging.send_each(messages[s : s + 500], app=app)
        assert batch.failure_count == 0
    return time.perf_counter() - t0


def run_ours(url: str, schema: str, fcm_url: str, procs: int) -> tuple[float, list[dict[str, int]]]:
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, spawn.Pool(procs) as pool:
        start = manager.Barrier(procs + 1)
        pending = [
            pool.apply_async(dispatch_proc.run, (url, schema, fcm_url, f"p{i}", AT, 500, start))
            for i in range(procs)
        ]
        start.wait()
        t0 = time.perf_counter()
        totals = [p.get(timeout=3600) for p in pending]
        return time.perf_counter() - t0, totals


def run_raw(fcm_url: str, devices: list[tuple[int, int, str]], procs: int) -> float:
    spawn = multiprocessing.get_context("spawn")
    share = -(-len(devices) // procs)
    with spawn.Manager() as manager, spawn.Pool(procs) as pool:
        start = manager.Barrier(procs + 1)
        pending = [
            pool.apply_async(
                _raw_worker, (fcm_url, devices[i * share : (i + 1) * share], i * share, start)
            )
            for i in range(procs)
        ]
        start.wait()
        t0 = time.perf_counter()
        for p in pending:
            p.get(timeout=3600)
        return time.perf_counter() - t0


def run_naive(fcm_url: str, devices: list[tuple[int, int, str]]) -> dict[str, Any]:
    app = local_fcm_app(fcm_url, timeout_s=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        messages = raw_messages(devices)
    for i, m in enumerate(messages):
        m.data["reminder_id"] = str(NAIVE_IDS + i)
        assert m.android is not None and m.android.notification is not None
        m.android.notification.tag = f"reminder-{NAIVE_IDS + i}"
    scheduler = BackgroundScheduler()  # the defaults: MemoryJobStore, 10 threads, grace 1 s
    lock = threading.Lock()
    seen = {"executed": 0, "missed": 0, "error": 0}
    delays: list[float] = []

    def listen(event: Any) -> None:
        with lock:
            if event.code == EVENT_JOB_MISSED:
                seen["missed"] += 1
            elif event.code == EVENT_JOB_ERROR:
                seen["error"] += 1
            else:
                seen["executed"] += 1
                delays.append(
                    (
                        datetime.now(event.scheduled_run_time.tzinfo) - event.scheduled_run_time
                    ).total_seconds()
                )

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    t_add = time.perf_counter()
    due = datetime.now().astimezone() + timedelta(seconds=5)
    for i, m in enumerate(messages):
        scheduler.add_job(
            messaging.send, "date", run_date=due, args=(m,), kwargs={"app": app}, id=str(i)
        )
    add_s = time.perf_counter() - t_add
    scheduler.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with lock:
            if sum(seen.values()) >= len(messages):
                break
        time.sleep(0.2)
    scheduler.shutdown(wait=False)
    delays.sort()
    return {
        **seen,
        "add_s": add_s,
        "late_over_60s": sum(1 for d in delays if d > 60),
        "p50": delays[len(delays) // 2] if delays else None,
        "max": delays[-1] if delays else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--naive-n", type=int, default=None, help="default: --n")
    args = parser.parse_args()
    naive_n = args.naive_n or args.n

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # one warning per missed job
    set_clock(lambda: AT)
    with LocalFcm() as fcm, throwaway_schema(PG_URL, prefix="cc_scale") as (engine, schema):
        upgrade(engine)
        devices = seed_people(engine, args.n)
        enqueue_due(engine, [u for _, u, _ in devices], 0)
        url = engine.url.render_as_string(hide_password=False)
        ours_s, totals = run_ours(url, schema, fcm.url, args.procs)
        raw_s = run_raw(fcm.url, devices, args.procs)
        naive = run_naive(fcm.url, devices[:naive_n])
        tags = fcm.stop()

    ours = {k: v for k, v in tags.items() if int(k[0].split("-")[1]) < RAW_IDS}
    dupes = sum(v - 1 for v in ours.values())
    lost = args.n - len(ours)
    print(f"{args.n} reminders due in the same minute, {args.procs} processes, PostgreSQL")
    print(f"  ours (claim/re-check/send/record): {ours_s:6.1f}s  {args.n / ours_s:7.0f}/s")
    print(
        f"    duplicates {dupes} (goal 0), lost {lost} (goal 0), per process claimed "
        f"{[t['claimed'] for t in totals]}, lost leases {sum(t['lost_lease'] for t in totals)}"
    )
    print(f"  raw send_each, same messages     : {raw_s:6.1f}s  {args.n / raw_s:7.0f}/s")
    print(f"  ratio ours/raw: {ours_s / raw_s:.2f}x (goal <= 1.25x)")
    print(
        f"  naive, {naive_n} APScheduler jobs (defaults): executed {naive['executed']}, "
        f"missed (dropped) {naive['missed']}, errors {naive['error']}, late > 60 s "
        f"{naive['late_over_60s']}, delay p50 {naive['p50']}, max {naive['max']} s; "
        f"adding the jobs took {naive['add_s']:.1f}s"
    )
    print(f"  python {sys.version.split()[0]}, cpus {os.cpu_count()}")
    return 0 if dupes == 0 and lost == 0 and ours_s <= 1.25 * raw_s else 1


if __name__ == "__main__":
    sys.exit(main())
