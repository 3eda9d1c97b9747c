"""Soak: the API under gunicorn, reminder workers and the local FCM server on PostgreSQL,
under steady mixed load for a few minutes; errors, reminder lateness, exactly-once delivery
and memory.

    python benchmarks/soak.py [--minutes 3] [--rate 40] [--reminder-workers 2]
                              [--reminders-per-second 5]

1. a throwaway PostgreSQL schema seeded like benchmarks/today_view.py (default 1,000
   patients with their medicines, 200 caregivers of 5 patients each, the demo people) plus
   an Android phone for every patient and ``--reminders-per-second`` pushes due, one after
   the other, over the whole run (kind ``summary``: every reminder is sent, none is
   re-checked away);
2. the local FCM-v1 server of the test suite (its own process); ``carecompanion serve``
   (gunicorn, ``--workers``); ``--reminder-workers`` reminder worker processes
   (``notifications.worker.run_worker`` with the FCM channel pointed at the local server,
   each with its metrics on a port of its own), which claim from the same outbox and each
   plan (at start, then every 5 min) and sweep (after 60 s, then every 15 min) on the
   production schedule;
3. wrk at a steady ``--rate`` requests/s in total (wrk's ``delay()``), a mix of three:
   caregivers' ``GET /me/today``, patients logging a dose (``POST /patients/{id}/doses``,
   each with a new ``client_id``) and a nurse's ``GET /worklist``; a warm-up first, then
   the resident memory (RSS) of every process is taken, the load runs ``--minutes``, and
   the RSS is taken again; the workers' heartbeats are read every second for 5 s; then the
   workers are stopped (each finishes the batch in hand) and the FCM server reports every
   message it accepted, by notification tag (``reminder-{outbox id}``) and token;
4. prints requests/s, p50/p95/p99, errors (non-2xx and socket errors), the reminders'
   lateness (due -> accepted by FCM) p50/p95 and how many were sent; per worker its pushes,
   claims, lost leases, planner and sweep runs, heartbeat age and RSS; the exactly-once
   count; the RSS at the start and end of every other process; and PASS/FAIL against the
   limits below (exit status 0 on PASS).

Limits: no errors; every reminder due before the end sent; the FCM server accepted every
one of them, and every reminder the outbox records as sent, exactly once (0 duplicates,
0 lost, none accepted that the outbox does not record); lateness p95 at most
``--lateness-limit`` seconds (default 10: a dispatch every 2 s); no process's RSS grown by
more than 10 % from the start to the end of the load; every worker's heartbeat at most 10 s
old. Needs PostgreSQL on 127.0.0.1 and wrk (installed by benchmarks/_tools.py when
missing). Nothing talks beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from backend.devtokens import emulator_token
from backend.models import Device, Medication, Patient, Reminder, User
from benchmarks._seed import PG_URL, insert_many, schema_url
from benchmarks._server import (
    LocalFcm,
    Tags,
    children,
    free_port,
    gunicorn,
    http,
    prepare_run,
    rss_mb,
    run_main,
    service,
    workspace,
)
from benchmarks._tools import Result, run_wrk, write_script
from benchmarks.today_view import seed

GROWTH_LIMIT = 0.10  # RSS may grow at most 10 % from the start to the end of the load
HEARTBEAT_LIMIT_S = 10.0  # an alert on the heartbeat would fire past this (dispatch every 2 s)
SOAK_KEY = "soak:"

# wrk's request(): a steady mix at a fixed total rate (see _tools.write_script)
REQUEST = r"""
local today = { %(today)s }        -- caregivers' tokens
local doses = { %(doses)s }        -- {token, path, medication id} of patients
local nurse = %(nurse)s
local delay_ms = %(delay_ms)d

function delay()
  return delay_ms
end

function request()
  counter = counter + 1
  local turn = counter %% 5
  if turn == 0 then
    return wrk.format("GET", "/worklist", { ["Authorization"] = "Bearer " .. nurse })
  elseif turn == 1 then
    local d = doses[(counter %% #doses) + 1]
    local body = string.format(
      '{"medication_id": %%d, "client_id": "soak-%%012d", "status": "taken", ' ..
      '"taken_at": "%(taken_at)s"}',
      d[3], counter)
    return wrk.format("POST", d[2], {
      ["Authorization"] = "Bearer " .. d[1], ["Content-Type"] = "application/json" }, body)
  end
  local token = today[(counter %% #today) + 1]
  return wrk.format("GET", "/me/today", { ["Authorization"] = "Bearer " .. token })
end
"""

WORKER = """
import sys
from backend.db import make_engine, init_engine
from backend.logs import configure_logging
from notifications.channels.fcm import FcmChannel
from notifications.worker import run_worker
from tests.fcmserver import local_fcm_app
url, fcm_url, bind, name = sys.argv[1:5]
configure_logging("INFO", "text")
engine = init_engine(make_engine(url, connect_args={"application_name": name}))
run_worker(engine, FcmChannel(local_fcm_app(fcm_url, timeout_s=10)), metrics_bind=bind)
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# -- seeding ---------------------------------------------------------------------------------


def add_phones_and_reminders(
    engine: Any, start: datetime, seconds: float, per_second: float
) -> int:
    """An Android phone for every patient with a login; pushes due one after the other."""
    with engine.begin() as conn:
        people = conn.execute(
            select(Patient.id, Patient.user_id).where(Patient.user_id.is_not(None))
        ).all()
        phones = [
            {
                "user_id": user_id,
                "installation_id": f"soak-{user_id}",
                "fcm_token": f"soak-token-{user_id}",
                "platform": "android",
                "notifications_enabled": True,
                "active": True,
                "created_at": start,
                "last_seen_at": start,
            }
            for _pid, user_id in people
        ]
        insert_many(conn, Device, phones)
        total = int(seconds * per_second)
        rows = []
        for i in range(total):
            patient_id, user_id = people[i % len(people)]
            due = start + timedelta(seconds=i / per_second)
            rows.append(
                {
                    "dedupe_key": f"{SOAK_KEY}{i}",
                    "kind": "summary",
                    "user_id": user_id,
                    "patient_id": patient_id,
                    "subject": {},
                    "due_at": due,
                    "not_after": due + timedelta(hours=2),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": due,
                    "created_at": start,
                }
            )
        insert_many(conn, Reminder, rows)
    return total


def dose_targets(engine: Any, count: int) -> list[tuple[str, int, int]]:
    """(patient's uid, patient id, one active medicine) for ``count`` patients."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(User.firebase_uid, Patient.id, func.min(Medication.id))
            .join(Patient, Patient.user_id == User.id)
            .join(Medication, Medication.patient_id == Patient.id)
            .where(Medication.status == "active", User.firebase_uid.like("bench-patient-%"))
            .group_by(User.firebase_uid, Patient.id)
            .order_by(Patient.id)
            .limit(count)
        ).all()
    return [(uid, pid, mid) for uid, pid, mid in rows]


# -- the reminder workers --------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    metrics_url: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def reminder_worker(number: int, url: str, fcm_url: str, folder: Path) -> Iterator[Worker]:
    """Worker ``number`` as its own process, its metrics on a free port; yielded once they
    answer. SIGTERM on the way out: it finishes the batch in hand."""
    port = free_port()
    name = f"cc-soak-worker-{number}"
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    command = [sys.executable, "-c", WORKER, url, fcm_url, f"127.0.0.1:{port}", name]

    def ready() -> bool:
        return http(metrics_url, timeout=2).status == 200

    log = folder / f"{name}.log"
    with service(name, command, log, env=dict(os.environ), ready=ready, stop_timeout=60) as proc:
        yield Worker(f"reminder worker {number}", metrics_url, proc)


def scrape(url: str) -> Samples:
    """Every sample of a ``/metrics`` page; empty when nothing answers (a dead worker)."""
    try:
        reply = http(url, timeout=10)
    except OSError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.body.decode())
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and want <= set(have))


def heartbeat_ages(workers: list[Worker], seconds: int = 5) -> dict[str, float | None]:
    """The oldest each worker's heartbeat was, read every second for ``seconds`` (what an
    alert on it would see); None for a worker that stopped answering."""
    worst: dict[str, float | None] = {w.name: 0.0 for w in workers}
    for _ in range(seconds):
        time.sleep(1)
        for w in workers:
            beat = total(scrape(w.metrics_url), "carecompanion_worker_heartbeat_timestamp_seconds")
            age = time.time() - beat if beat else None
            before = worst[w.name]
            worst[w.name] = None if age is None or before is None else max(before, age)
    return worst


# -- what happened to the reminders ----------------------------------------------------------


def lateness(engine: Any, until: datetime) -> dict[str, Any]:
    """Of the soak's reminders due before ``until``: how many were sent, and due -> sent."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reminder.state, Reminder.due_at, Reminder.sent_at).where(
                Reminder.dedupe_key.like(f"{SOAK_KEY}%"), Reminder.due_at < until
            )
        ).all()
    delays = sorted((s - d).total_seconds() for state, d, s in rows if state == "sent" and s)

    def pct(p: float) -> float | None:
        return delays[max(0, math.ceil(p / 100 * len(delays)) - 1)] if delays else None

    states = Counter(state for state, _d, _s in rows)
    return {
        "due": len(rows),
        "states": dict(states),
        "p50": pct(50),
        "p95": pct(95),
        "max": pct(100),
    }


def exactly_once(engine: Any, tags: Tags, until: datetime) -> dict[str, int]:
    """What the FCM server accepted, per outbox id (the tag ``reminder-{id}``), against the
    outbox. Owed: every soak reminder due before ``until`` (they are never re-checked away)
    and every reminder the outbox records as sent (the planner's too). Lost: owed, never
    accepted. Duplicates: messages beyond the first per (tag, token). Unrecorded: accepted
    for a reminder the outbox does not record as sent (it would be sent again)."""
    accepted: Counter[int] = Counter()
    for (tag, _token), n in tags.items():
        accepted[int(tag.removeprefix("reminder-"))] += n
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reminder.id, Reminder.dedupe_key, Reminder.state, Reminder.due_at)
        ).all()
    sent = {rid for rid, _key, state, _due in rows if state == "sent"}
    due = {rid for rid, key, _s, at in rows if key.startswith(SOAK_KEY) and at < until}
    owed = due | sent
    return {
        "owed": len(owed),
        "soak due": len(due),
        "others sent": len(sent - due),
        "messages": sum(tags.values()),
        "duplicates": sum(n - 1 for n in tags.values() if n > 1),
        "lost": sum(1 for rid in owed if not accepted[rid]),
        "unrecorded": sum(1 for rid in accepted if rid not in sent),
    }


def memory(processes: dict[str, int]) -> dict[str, float]:
    return {name: mb for name, pid in processes.items() if (mb := rss_mb(pid)) is not None}


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Soak:
    """What one run measured, for :func:`report`."""

    seconds: int
    load: Result
    late: dict[str, Any]
    once: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    workers: list[Worker]
    worker_metrics: dict[str, Samples]
    ages: dict[str, float | None]
    exit_codes: dict[str, int | None]
    api: Samples
    version: str
    uptime: tuple[str, str]


def uptime() -> str:
    """The load average as ``uptime`` prints it: the soak's figures mean little without it."""
    e1, e5, e15 = os.getloadavg()
    return f"load average {e1:.2f}, {e5:.2f}, {e15:.2f} (1, 5, 15 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the load")
    parser.add_argument("--warmup", type=int, default=20, help="seconds of load before")
    parser.add_argument("--rate", type=int, default=40, help="requests/s in total")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--reminder-workers", type=int, default=2, help="worker processes")
    parser.add_argument("--patients", type=int, default=1_000)
    parser.add_argument("--caregivers", type=int, default=200)
    parser.add_argument("--reminders-per-second", type=float, default=5.0)
    parser.add_argument("--lateness-limit", type=float, default=10.0, help="p95, seconds")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    args = parser.parse_args(argv)
    if args.reminder_workers < 1:
        parser.error("--reminder-workers must be at least 1")
    wrk, settings = prepare_run()  # wrk installed by benchmarks/_tools.py when missing
    seconds = int(args.minutes * 60)
    load_at_start = uptime()
    with (
        LocalFcm() as fcm,
        workspace(args.pg_url, "soak") as (engine, schema, folder),
    ):
        print(f"schema {schema}: seeding {args.patients:,} patients ...", flush=True)
        seed(engine, args.patients, args.caregivers, 5, 1, random.Random(20261206))
        span = args.warmup + seconds + 60
        hours = timedelta(hours=2)
        caregivers = [f"bench-caregiver-{i:05d}" for i in range(args.caregivers)]
        today = [emulator_token(settings, u, f"{u}@example.org", u, hours) for u in caregivers]
        doses = [
            (emulator_token(settings, uid, f"{uid}@example.org", uid, hours), pid, mid)
            for uid, pid, mid in dose_targets(engine, 200)
        ]
        nurse = emulator_token(settings, "demo-priya", "priya@example.org", "Priya", hours)
        script = write_script(
            folder,
            "soak",
            REQUEST
            % {
                "today": ", ".join(json.dumps(t) for t in today),
                "doses": ", ".join(
                    f'{{{json.dumps(t)}, "/patients/{p}/doses", {m}}}' for t, p, m in doses
                ),
                "nurse": json.dumps(nurse),
                "delay_ms": max(1, round(1000 * args.connections / args.rate)),
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        url = schema_url(args.pg_url, schema)
        with (
            gunicorn(url, args.workers, folder / "gunicorn.log") as server,
            contextlib.ExitStack() as running,
        ):
            workers = [
                running.enter_context(reminder_worker(n + 1, url, fcm.url, folder))
                for n in range(args.reminder_workers)
            ]
            status = http(f"{server.base}/worklist", nurse).status
            if status != 200:
                raise SystemExit(f"GET /worklist as the nurse answered {status}")
            for token, patient_id, medication_id in doses[:20]:
                body = {
                    "medication_id": medication_id,
                    "client_id": f"soak-check-{patient_id}",
                    "status": "taken",
                    "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                reply = http(f"{server.base}/patients/{patient_id}/doses", token, body=body)
                if reply.status != 201:
                    raise SystemExit(f"logging a dose answered {reply.status}: {reply.body!r}")
            reminders = add_phones_and_reminders(
                engine, datetime.now(UTC), span, args.reminders_per_second
            )
            print(
                f"{reminders:,} reminders due over {span} s, {len(workers)} reminder workers; "
                f"warming up {args.warmup} s, then {args.rate} requests/s for {seconds} s ...",
                flush=True,
            )
            run_wrk(wrk, server.base, script, "warm-up", args.warmup, args.connections)
            processes = {"gunicorn master": server.pid}
            for i, pid in enumerate(children(server.pid)):
                processes[f"gunicorn worker {i + 1}"] = pid
            processes |= {w.name: w.pid for w in workers}
            if fcm.pid is not None:
                processes["local FCM server"] = fcm.pid
            before = memory(processes)
            name = f"mix for {seconds} s"
            load = run_wrk(wrk, server.base, script, name, seconds, args.connections)
            after = memory(processes)
            end = datetime.now(UTC)
            # The last due reminders get a couple more dispatch runs meanwhile.
            ages = heartbeat_ages(workers)
            worker_metrics = {w.name: scrape(w.metrics_url) for w in workers}
            api_metrics = scrape(f"{server.base}/metrics")
            running.close()  # SIGTERM: each worker finishes its batch, then exits
            exit_codes = {w.name: w.proc.returncode for w in workers}
        cutoff = end - timedelta(seconds=5)
        late = lateness(engine, cutoff)
        once = exactly_once(engine, fcm.stop(), cutoff)
        with engine.connect() as conn:
            version = conn.scalar(text("SHOW server_version")) or "?"
    soak = Soak(
        seconds,
        load,
        late,
        once,
        before,
        after,
        workers,
        worker_metrics,
        ages,
        exit_codes,
        api_metrics,
        version,
        (load_at_start, uptime()),
    )
    return report(args, soak)


def report(args: argparse.Namespace, soak: Soak) -> int:
    load, late, once, api = soak.load, soak.late, soak.once, soak.api
    print(
        f"\nSoak: {soak.seconds} s at {args.rate} requests/s target ({args.connections} "
        f"connections), gunicorn {args.workers} workers, {len(soak.workers)} reminder workers, "
        f"local FCM; PostgreSQL {soak.version}; {os.cpu_count()} CPUs"
    )
    print(f"uptime before the run: {soak.uptime[0]}; after: {soak.uptime[1]}")
    errors = sum(load.errors.values())
    print(
        f"API: {load.requests:,} requests, {load.rps:.1f}/s, p50 {load.p50:.1f} ms, "
        f"p95 {load.p95:.1f} ms, p99 {load.p99:.1f} ms, errors {errors} {load.errors or ''}"
    )
    requests = "carecompanion_http_requests_total"
    statuses = [(dict(labels), v) for (n, labels), v in api.items() if n == requests]
    fivexx = sum(v for labels, v in statuses if labels["status"].startswith("5"))
    refused = {
        f"{labels['method']} {labels['route']} {labels['status']}": int(v)
        for labels, v in statuses
        if not labels["status"].startswith("2")
    }
    print(
        f"API /metrics: {total(api, requests):,.0f} requests counted over all processes "
        f"(warm-up included), {fivexx:.0f} with a 5xx; not 2xx: {refused or 'none'}"
    )

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    print(
        f"Reminders: {late['due']:,} due during the run, states {late['states']}; lateness "
        f"(due -> accepted) p50 {secs(late['p50'])}, p95 {secs(late['p95'])}, "
        f"max {secs(late['max'])}"
    )
    print(
        f"Exactly once at the FCM server: {once['owed']:,} reminders owed ({once['soak due']:,} "
        f"of the soak's due, {once['others sent']:,} more the outbox records as sent), "
        f"{once['messages']:,} messages accepted: {once['duplicates']} duplicates, "
        f"{once['lost']} lost, {once['unrecorded']} accepted but not recorded as sent"
    )
    header = (
        f"{'reminder worker':<19} {'pushes':>7} {'refused':>7} {'claims':>7} {'leases':>6} "
        f"{'plans':>5} {'sweeps':>6} {'failed':>6} {'beat':>6}   {'RSS MB start -> end':>24} "
        f"{'exit':>4}"
    )
    print(
        "Per reminder worker, from its /metrics after the load (a batch in hand at the stop is "
        "not in them): pushes accepted and refused by FCM, reminders claimed, leases lost, "
        "planner and sweep runs, failed job runs, the heartbeat's oldest age in the 5 s after "
        "the load; its RSS and exit status"
    )
    print(header)
    for w in soak.workers:
        m = soak.worker_metrics[w.name]
        age = soak.ages[w.name]
        start, end = soak.before.get(w.name), soak.after.get(w.name)
        rss = "gone" if start is None or end is None else f"{start:7.1f} -> {end:7.1f}"
        change = f" {end / start - 1:+6.1%}" if start and end else ""
        print(
            f"{w.name:<19} {total(m, 'carecompanion_pushes_total', result='accepted'):>7.0f} "
            f"{total(m, 'carecompanion_pushes_total', result='refused'):>7.0f} "
            f"{total(m, 'carecompanion_reminders_claimed_total'):>7.0f} "
            f"{total(m, 'carecompanion_leases_lost_total'):>6.0f} "
            f"{total(m, 'carecompanion_job_duration_seconds_count', job='plan'):>5.0f} "
            f"{total(m, 'carecompanion_job_duration_seconds_count', job='sweep'):>6.0f} "
            f"{total(m, 'carecompanion_job_failures_total'):>6.0f} "
            f"{'-' if age is None else f'{age:.1f} s':>6}   {rss + change:>24} "
            f"{soak.exit_codes[w.name]!s:>4}"
        )
    print("RSS (MB) of the others   start      end   growth")
    grown = []
    for name, start in soak.before.items():
        end = soak.after.get(name)
        if end is None:
            grown.append(name)
            if not name.startswith("reminder worker"):
                print(f"  {name:<21} {start:8.1f}     gone")
            continue
        growth = end / start - 1
        if growth > GROWTH_LIMIT:
            grown.append(name)
        if not name.startswith("reminder worker"):
            print(f"  {name:<21} {start:8.1f} {end:8.1f} {growth:+8.1%}")
    dispatching = [
        w.name
        for w in soak.workers
        if total(soak.worker_metrics[w.name], "carecompanion_reminders_claimed_total") > 0
        and (age := soak.ages[w.name]) is not None
        and age <= HEARTBEAT_LIMIT_S
    ]
    clean = all(code == 0 for code in soak.exit_codes.values()) and not any(
        total(m, "carecompanion_job_failures_total") for m in soak.worker_metrics.values()
    )
    unsent = late["due"] - late["states"].get("sent", 0)
    checks = {
        "no errors": errors == 0 and fivexx == 0,
        "every due reminder sent": unsent == 0 and late["due"] > 0,
        "exactly once at the FCM server (0 duplicates, 0 lost, 0 unrecorded)": once["owed"] > 0
        and once["duplicates"] == once["lost"] == once["unrecorded"] == 0,
        f"lateness p95 <= {args.lateness_limit:g} s": late["p95"] is not None
        and late["p95"] <= args.lateness_limit,
        f"every worker dispatched, heartbeat <= {HEARTBEAT_LIMIT_S:g} s old": len(dispatching)
        == len(soak.workers),
        "no worker job failed, every worker stopped cleanly (exit 0)": clean,
        f"RSS growth <= {GROWTH_LIMIT:.0%} per process": not grown,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    verdict = all(checks.values())
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


if __name__ == "__main__":
    run_main(main, "processes stopped, schema dropped")
