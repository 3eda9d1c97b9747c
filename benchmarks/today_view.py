"""``GET /me/today`` under load: gunicorn (2 workers) on a seeded PostgreSQL, driven by wrk.

    python benchmarks/today_view.py [--duration 20] [--connections 16] [--explain]

What it does, in one run, and then stops by itself (Ctrl-C is fine at any point):

1. creates a throwaway schema in the PostgreSQL at 127.0.0.1:5432/test, migrates it with the
   app's own Alembic migrations, loads the demo people (``load_fixtures(care_data=False)``)
   and bulk-seeds 10,000 patients (own logins, a mix of zones and routines), each with
   5 medicines -- daily ``timeOfDay``, BID ``when`` CM/CV, TID, weekly ``dayOfWeek``, a PRN
   with a 24 h maximum -- 2 appointments (today and later), an active care plan, dose logs
   for the past few days and today so far, and 2,000 caregivers who each hold an active
   grant (view_medications, view_appointments, view_care_plan) on 5 of those patients;
2. starts ``carecompanion serve`` (gunicorn, 2 workers) on a free port of 127.0.0.1 with
   ``DATABASE_URL`` pointing at the schema (``?options=-csearch_path%3D<schema>``) and the
   auth-emulator switch, and waits for ``/healthz``;
3. checks one caregiver's today view (5 patients, doses, appointments); has every caregiver
   open the app once, 16 at a time (the first view of the day: each day computed and
   cached), then runs wrk against
   ``GET /healthz`` (the trivial baseline: no sign-in, ``SELECT 1``) and ``GET /me/today``
   (rotating the tokens of all caregivers, one per request, so no cache can help), each
   after a warm-up, and prints requests/s and p50/p95/p99 for both and their ratio, plus the
   CPU each request cost the gunicorn processes, their PostgreSQL sessions and wrk (from
   /proc: unlike requests/s, this hardly depends on what else the machine is doing);
4. stops gunicorn and drops the schema (also on errors and Ctrl-C).

``--explain`` also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of every SELECT one today view runs.
Nothing talks beyond 127.0.0.1. wrk and gunicorn share this machine's CPUs, so on a small
machine the figures are lower bounds for the server. The goal from issue 14: the cached
today view at least 0.6x the baseline's requests/s, with p95 under 50 ms at 16 connections. The exit
status is 0 when both are met (and no request failed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import db
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.models import (
    AccessLogEntry,
    Appointment,
    CaregiverGrant,
    CarePlan,
    DoseLog,
    Medication,
)
from backend.schedule import GTS_SYSTEM, Routine, Timing, expand, parse_timing
from backend.services.doses import LATE_AFTER, LATE_AFTER_CRITICAL
from benchmarks._seed import (
    PG_URL,
    add_patients,
    add_users,
    copy_rows,
    insert_many,
    insert_returning_ids,
    schema_url,
)
from benchmarks._server import CpuProbe, gunicorn, http, prepare_run, run_main, workspace
from benchmarks._tools import Result, print_results, run_wrk, write_script

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Madrid",
    "Asia/Kolkata",
    "Australia/Sydney",
)
CAREGIVER_PERMISSIONS = ["view_appointments", "view_care_plan", "view_medications"]
RELATIONSHIPS = ("daughter", "son", "spouse", "friend", "paid_carer", "grandchild")
APPOINTMENT_TYPES = ("in_person", "telehealth", "home_visit", "lab")
WAKE, LUNCH, BED = clock_time(7, 0), clock_time(12, 30), clock_time(22, 0)
SEEDED_TABLES = (
    "users",
    "patients",
    "caregiver_grants",
    "medications",
    "dose_logs",
    "appointments",
    "care_plans",
)


# --------------------------------------------------------------------------- seeding


def _code(abbreviation: str) -> dict[str, Any]:
    return {"coding": [{"system": GTS_SYSTEM, "code": abbreviation}]}


def _daily(rng: random.Random) -> dict[str, Any]:
    at = rng.choice(["08:00:00", "09:00:00", "20:00:00"])
    if rng.random() < 0.5:  # as the demo's Lisinopril: the code plus the time
        return {"code": _code("QD"), "repeat": {"timeOfDay": [at]}}
    return {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": [at]}}


def _bid_with_meals(rng: random.Random) -> dict[str, Any]:
    return {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["CM", "CV"]}}


def _tid(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"code": _code("TID")}
    return {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}


def _weekly(rng: random.Random) -> dict[str, Any]:
    day = rng.choice(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    return {
        "repeat": {
            "frequency": 1,
            "period": 1,
            "periodUnit": "wk",
            "dayOfWeek": [day],
            "when": ["ACM"],
            "offset": 30,
        }
    }


# name, strength, how the schedule is made (None: PRN only)
MEDICINES: tuple[tuple[str, str, Any], ...] = (
    ("Lisinopril", "10 mg", _daily),
    ("Metformin", "500 mg", _bid_with_meals),
    ("Amoxicillin", "500 mg", _tid),
    ("Alendronate", "70 mg", _weekly),
    ("Acetaminophen", "500 mg", None),
)


@dataclass
class Seeded:
    patients: int
    medications: int
    appointments: int
    dose_logs: int
    caregiver_uids: list[str]
    seconds: float
    phases: dict[str, float]


def _parsed(cache: dict[str, Timing], timing: dict[str, Any]) -> Timing:
    key = json.dumps(timing, sort_keys=True)
    if key not in cache:
        cache[key] = parse_timing(timing)  # the API's own validation: refused shapes fail here
    return cache[key]


def seed(
    engine: Engine,
    patients: int,
    caregivers: int,
    per_caregiver: int,
    history_days: int,
    rng: random.Random,
    habits: Callable[[random.Random], tuple[float, float]] | None = None,
) -> Seeded:
    """``habits``: draws one patient's (forget, skip) chances per scheduled dose; without it
    every patient forgets 12 % and skips 5 % of doses."""
    t0 = time.perf_counter()
    phases: dict[str, float] = {}

    def mark(phase: str) -> None:
        phases[phase] = time.perf_counter() - t0 - sum(phases.values())

    now = datetime.now(UTC)
    db.init_engine(engine)
    load_fixtures(db.session(), care_data=False)
    db.session.commit()
    db.session.remove()
    mark("fixtures")

    with engine.begin() as conn:
        # ---- people
        patient_users = add_users(conn, "bench-patient", patients, now)
        caregiver_users = add_users(conn, "bench-caregiver", caregivers, now)
        zones = [rng.choice(ZONES) for _ in range(patients)]
        breakfast = [
            rng.choice([clock_time(7, 0), clock_time(7, 30), clock_time(8, 0)]) for _ in zones
        ]
        dinner = [
            rng.choice([clock_time(18, 0), clock_time(18, 30), clock_time(19, 0)]) for _ in zones
        ]
        names = [f"Patient {i:05d} {rng.choice('ABCDEFGH')}." for i in range(patients)]
        patient_ids = add_patients(
            conn,
            patient_users,
            names,
            now,
            time_zone=zones,
            wake_time=WAKE,
            breakfast_time=breakfast,
            lunch_time=LUNCH,
            dinner_time=dinner,
            bed_time=BED,
            language=[rng.choice(["en", "en", "es"]) for _ in zones],
        )
        grants = []
        for c, caregiver_id in enumerate(caregiver_users):
            for k in range(per_caregiver):
                p = (c * per_caregiver + k) % patients
                grants.append(
                    {
                        "patient_id": patient_ids[p],
                        "caregiver_user_id": caregiver_id,
                        "relationship": rng.choice(RELATIONSHIPS),
                        "permissions": CAREGIVER_PERMISSIONS,
                        "is_managing": False,
                        "granted_by_user_id": patient_users[p],
                        "created_at": now - timedelta(days=30),
                    }
                )
        insert_many(conn, CaregiverGrant, grants)
        mark("people")

        # ---- medicines
        parsed: dict[str, Timing] = {}
        med_rows: list[dict[str, Any]] = []
        for p, pid in enumerate(patient_ids):
            today = now.astimezone(ZoneInfo(zones[p])).date()
            for name, strength, make in MEDICINES:
                timing = make(rng) if make else None
                if timing is not None:
                    _parsed(parsed, timing)
                critical = name == "Lisinopril" and rng.random() < 0.1
                med_rows.append(
                    {
                        "patient_id": pid,
                        "name": name,
                        "strength": strength,
                        "form": "tablet",
                        "route": "oral",
                        "instructions": "With food." if name == "Metformin" else None,
                        "start_date": today - timedelta(days=rng.randrange(history_days + 1, 365)),
                        "status": "active",
                        "time_critical": critical,
                        "timing": timing,
                        "as_needed": timing is None,
                        "prn_max_per_24h": 4 if timing is None else None,
                        "prn_min_interval_minutes": 240 if timing is None else None,
                        "tz_policy": "home" if critical else "local",
                        "home_time_zone": zones[p],
                        "quantity_on_hand": float(rng.randrange(5, 90)),
                        "dose_amount": 1.0,
                        "refill_threshold_days": 7,
                        "created_by_user_id": patient_users[p],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        med_ids = insert_returning_ids(conn, Medication, med_rows, key=("patient_id", "name"))
        mark("medicines")

        # ---- dose logs: the past few days and today so far, as people really log them;
        # streamed into COPY as they are made (months of history are millions of rows)
        def dose_logs() -> Iterator[tuple[Any, ...]]:
            for p, pid in enumerate(patient_ids):
                zone = zones[p]
                routine = Routine(WAKE, breakfast[p], LUNCH, dinner[p], BED)  # as routine_of()
                tz = ZoneInfo(zone)
                today = now.astimezone(tz).date()
                start = datetime.combine(today - timedelta(days=history_days), clock_time(0), tz)
                forget, skip = habits(rng) if habits else (0.12, 0.05)
                for k in range(len(MEDICINES)):
                    row = med_rows[p * len(MEDICINES) + k]
                    mid = med_ids[p * len(MEDICINES) + k]
                    if row["timing"] is None:
                        for prn in _prn_logs(rng, pid, mid, patient_users[p], now):
                            yield tuple(prn[c] for c in DOSE_LOG_COLUMNS)
                        continue
                    anchor = datetime.combine(row["start_date"], clock_time(0), tz)
                    for occ in expand(
                        _parsed(parsed, row["timing"]),
                        routine,
                        zone,
                        start,
                        now,
                        anchor=anchor,
                        policy=row["tz_policy"],
                        home_zone=zone,
                    ):
                        log = _scheduled_log(
                            rng, pid, mid, patient_users[p], occ.slot_key, occ.at, now, forget, skip
                        )
                        if log is not None and log["taken_at"] <= now:
                            log["late"] = log["status"] == "taken" and log["taken_at"] - occ.at > (
                                LATE_AFTER_CRITICAL if row["time_critical"] else LATE_AFTER
                            )
                            yield tuple(log[c] for c in DOSE_LOG_COLUMNS)

        dose_log_count = copy_rows(conn, DoseLog, DOSE_LOG_COLUMNS, dose_logs())
        mark("dose logs")

        # ---- appointments: one today (some already over), one later
        appointments: list[dict[str, Any]] = []
        for p, pid in enumerate(patient_ids):
            tz = ZoneInfo(zones[p])
            today = now.astimezone(tz).date()
            for in_days in (0, rng.randrange(2, 30)):
                hour = rng.randrange(8, 18)
                start_at = datetime.combine(
                    today + timedelta(days=in_days), clock_time(hour, rng.choice([0, 15, 30])), tz
                ).astimezone(UTC)
                kind = rng.choice(APPOINTMENT_TYPES)
                appointments.append(
                    {
                        "patient_id": pid,
                        "title": f"{kind.replace('_', ' ').title()} with Dr. {rng.choice('KLMNO')}",
                        "type": kind,
                        "provider_name": "Riverside Primary Care",
                        "location": None if kind == "telehealth" else "Riverside Clinic",
                        "video_url": "https://video.example.org/r"
                        if kind == "telehealth"
                        else None,
                        "start_at": start_at,
                        "end_at": start_at + timedelta(minutes=rng.choice([20, 30, 45, 60])),
                        "time_zone": zones[p],
                        "preparation_notes": "Bring your medicines." if in_days else None,
                        "transport_needed": rng.random() < 0.2,
                        "status": "booked",
                        "created_by_user_id": patient_users[p],
                        "updated_by_user_id": patient_users[p],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        insert_many(conn, Appointment, appointments)
        mark("appointments")

        # ---- one active care plan each, with open and done activities
        plans = [
            {
                "patient_id": pid,
                "title": "Living well at home",
                "instructions": "Take your medicines at the same times each day.",
                "conditions": [{"text": "High blood pressure", "status": "active"}],
                "goals": [
                    {"id": uuid.uuid4().hex, "description": "BP < 130/80", "status": "active"}
                ],
                "activities": [
                    {
                        "id": uuid.uuid4().hex,
                        "description": description,
                        "frequency": "daily",
                        "responsible": {"kind": "patient"},
                        "status": status,
                    }
                    for description, status in (
                        ("Walk 20 minutes", "open"),
                        ("Check blood pressure", "open"),
                        ("Book the eye test", "done"),
                    )
                ],
                "status": "active",
                "version": 1,
                "created_by_user_id": patient_users[p],
                "created_at": now,
                "updated_at": now,
            }
            for p, pid in enumerate(patient_ids)
        ]
        insert_many(conn, CarePlan, plans)
        mark("care plans")
        # What autovacuum does shortly after a bulk load (our tables only: the database is
        # shared with other schemas).
        for table in SEEDED_TABLES:
            conn.execute(text(f"ANALYZE {table}"))
    mark("commit+analyze")

    return Seeded(
        patients=patients,
        medications=len(med_rows),
        appointments=len(appointments),
        dose_logs=dose_log_count,
        caregiver_uids=[f"bench-caregiver-{i:05d}" for i in range(caregivers)],
        seconds=time.perf_counter() - t0,
        phases=phases,
    )


# every column _log_row fills, in its order (undone_at stays NULL)
DOSE_LOG_COLUMNS = (
    "patient_id",
    "medication_id",
    "client_id",
    "status",
    "late",
    "slot_key",
    "scheduled_at",
    "taken_at",
    "skip_reason",
    "over_limit",
    "logged_by_user_id",
    "on_behalf",
    "logged_at",
    "corrections",
)


def _log_row(
    pid: int, mid: int, by: int, status: str, taken_at: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "patient_id": pid,
        "medication_id": mid,
        "client_id": uuid.uuid4().hex,
        "status": status,
        "late": False,
        "slot_key": None,
        "scheduled_at": None,
        "taken_at": taken_at,
        "skip_reason": None,
        "over_limit": False,
        "logged_by_user_id": by,
        "on_behalf": False,
        "logged_at": min(taken_at + timedelta(minutes=2), now),
        "corrections": [],
    }


def _scheduled_log(
    rng: random.Random,
    pid: int,
    mid: int,
    by: int,
    slot_key: str,
    at: datetime,
    now: datetime,
    forget: float = 0.12,
    skip: float = 0.05,
) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < forget:
        return None  # forgotten: shows as due, overdue or missed
    status = "skipped" if roll < forget + skip else "taken"
    minutes = rng.choice([-10, -5, 0, 3, 10, 20, 45, 90])
    taken_at = at + timedelta(minutes=minutes)
    log = _log_row(pid, mid, by, status, taken_at, now)
    log.update(slot_key=slot_key, scheduled_at=at)
    if status == "skipped":
        log["skip_reason"] = "felt unwell"
    return log


def _prn_logs(
    rng: random.Random, pid: int, mid: int, by: int, now: datetime
) -> list[dict[str, Any]]:
    if rng.random() < 0.6:
        return []
    first = now - timedelta(hours=rng.uniform(1, 30))
    return [
        _log_row(pid, mid, by, "taken", first + timedelta(hours=5 * i), now)
        for i in range(rng.randrange(1, 4))
        if first + timedelta(hours=5 * i) <= now
    ]


# Issue 14's goal: a cached today view at least this share of /healthz's requests/s.
GOAL_RATIO = 0.6
# What this benchmark measured before the cache (each day computed on every view).
BEFORE = (
    "0.08x healthz (130 vs 1,650 req/s), p95 140 ms, 14.7 ms server CPU per request "
    "(healthz 1.1 ms), on a quiet machine"
)

# wrk's request(): one path, rotating the tokens (none: signed out); see _tools.write_script.
REQUEST = r"""
local path = %(path)s
local tokens = { %(tokens)s }

function request()
  counter = counter + 1
  if #tokens == 0 then
    return wrk.format("GET", path)
  end
  local token = tokens[(counter %% #tokens) + 1]
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
"""


def write_lua(folder: Path, name: str, path: str, tokens: list[str]) -> Path:
    body = ", ".join(json.dumps(t) for t in tokens)
    return write_script(folder, name, REQUEST % {"path": json.dumps(path), "tokens": body})


# --------------------------------------------------------------------------- checks


def first_opens(base: str, tokens: list[str], connections: int) -> Result:
    """Every caregiver opens the app once, ``connections`` at a time: each of their patients'
    days is computed and cached (the first view of the day; later ones are served cached)."""
    name = "GET /me/today (first of the day)"
    print(f"{name}: {len(tokens):,} caregivers, {connections} at a time ...", flush=True)

    def one(token: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        status = http(f"{base}/me/today", token).status
        return time.perf_counter() - t0, status

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        done = list(pool.map(one, tokens))
    seconds = time.perf_counter() - t0
    latencies = sorted(1000 * t for t, _ in done)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    failed = sum(1 for _, status in done if status != 200)
    return Result(
        name, len(done), len(done) / seconds, pct(0.5), pct(0.95), pct(0.99),
        {"status": failed} if failed else {}, "",
    )  # fmt: skip


def sanity_check(base: str, token: str, per_caregiver: int) -> dict[str, int]:
    """One caregiver's day before the load: every patient, doses and appointments present."""
    status, _headers, body = http(f"{base}/me/today", token)
    if status != 200:
        raise SystemExit(f"GET /me/today answered {status}: {body[:500]!r}")
    patients = json.loads(body)["patients"]
    if len(patients) != per_caregiver:
        raise SystemExit(
            f"expected {per_caregiver} patients in the today view, got {len(patients)}"
        )
    counts = {
        key: sum(len(p[key] or []) for p in patients)
        for key in ("doses", "prn", "extra_doses", "appointments", "activities")
    }
    if not counts["doses"] or not counts["appointments"]:
        raise SystemExit(f"the today view looks empty: {counts}")
    counts["bytes"] = len(body)
    return counts


def explain(engine: Engine, settings: Settings, uid: str, path: str = "/me/today") -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT one ``GET path`` (the today view) runs,
    captured in-process."""
    from sqlalchemy import event

    from backend.app import create_app

    app = create_app(settings, ENGINE=engine, TESTING=True)
    token = emulator_token(settings, uid, f"{uid}@example.org", uid, timedelta(hours=1))
    captured: list[tuple[str, Any]] = []
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())
        if statements[-1] == "SELECT":
            captured.append((statement, parameters))

    client = app.test_client()
    client.get(path, headers={"Authorization": f"Bearer {token}"})  # warm caches
    event.listen(engine, "before_cursor_execute", capture)
    try:
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert response.status_code == 200, response.get_data(as_text=True)
    kinds = ", ".join(f"{statements.count(k)} {k}" for k in sorted(set(statements)))
    print(f"\n{len(statements)} statements ({kinds}) in one GET {path}; the SELECTs:")
    with engine.connect() as conn:
        for statement, parameters in captured:
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
            print("\n" + " ".join(statement.split())[:400])
            for (line,) in plan:
                print("    " + line)
    db.init_engine(engine)


# --------------------------------------------------------------------------- report


def report(
    results: list[Result],
    seeded: Seeded,
    sample: dict[str, int],
    args: argparse.Namespace,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> bool:
    cpu = platform.processor() or platform.machine()
    print(
        f"\ncare-companion GET /me/today under load -- PostgreSQL {args.server_version}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({cpu}); wrk and gunicorn "
        f"share them"
    )
    print(
        f"data: {seeded.patients:,} patients, {seeded.medications:,} medicines, "
        f"{seeded.appointments:,} appointments, {seeded.dose_logs:,} dose logs "
        f"({args.history_days} days + today), {len(seeded.caregiver_uids):,} caregivers x "
        f"{args.per_caregiver} patients; seeding took {seeded.seconds:.1f} s"
    )
    print(
        f"load: gunicorn {args.workers} sync workers, wrk {args.threads} threads x "
        f"{args.connections} connections, {args.duration} s each after {args.warmup} s warm-up; "
        f"today view rotates {args.tokens:,} caregivers' tokens (one caregiver's day: "
        f"{sample['doses']} doses, {sample['prn']} PRN, {sample['appointments']} appointments, "
        f"{sample['activities']} activities, {sample['bytes']:,} bytes)"
    )
    print_results(results)
    base, today, first = results
    ratio = today.rps / base.rps
    ok_ratio, ok_p95 = ratio >= GOAL_RATIO, today.p95 < 50
    print(
        f"today / healthz requests/s: {ratio:.2f} (goal >= {GOAL_RATIO}: "
        f"{'met' if ok_ratio else 'MISSED'}); today p95 {today.p95:.1f} ms (goal < 50 ms: "
        f"{'met' if ok_p95 else 'MISSED'}); the first view of the day (computed): "
        f"{first.rps / base.rps:.2f}x healthz, p95 {first.p95:.1f} ms"
    )
    if base.cpu_ms and today.cpu_ms:
        server = {r.name: r.cpu_ms["gunicorn"] + r.cpu_ms["postgres"] for r in results}
        print(
            f"server CPU per request (gunicorn + its PostgreSQL sessions): healthz "
            f"{server[base.name]:.2f} ms, today {server[today.name]:.2f} ms "
            f"({server[today.name] / server[base.name]:.1f}x), first of the day "
            f"{server[first.name]:.2f} ms ({server[first.name] / server[base.name]:.1f}x)"
        )
    print(f"before the today cache (issue 14, same benchmark): {BEFORE}")
    (b1, b5, b15), (e1, e5, e15) = load
    print(
        f"machine load average (1/5/15 min) before the server started {b1:.2f} {b5:.2f} {b15:.2f},"
        f" after the load {e1:.2f} {e5:.2f} {e15:.2f}: more than {os.cpu_count()} means other"
        " work competed for the CPUs"
    )
    return ok_ratio and ok_p95 and not base.errors and not today.errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--caregivers", type=int, default=2_000)
    parser.add_argument("--per-caregiver", type=int, default=5, help="patients per caregiver")
    parser.add_argument(
        "--history-days", type=int, default=3, help="days of dose logs before today"
    )
    parser.add_argument("--tokens", type=int, default=0, help="caregivers to rotate (0: all)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=5, help="seconds per endpoint, not counted")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--explain", action="store_true", help="print the today queries' plans")
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own reports")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    if args.caregivers * args.per_caregiver > args.patients:
        parser.error("--caregivers x --per-caregiver must not exceed --patients")
    wrk, settings = prepare_run()
    with workspace(args.pg_url, "today") as (engine, schema, folder):
        print(f"schema {schema}: seeding {args.patients:,} patients ...", flush=True)
        seeded = seed(
            engine,
            args.patients,
            args.caregivers,
            args.per_caregiver,
            args.history_days,
            random.Random(args.seed),
        )
        phases = ", ".join(f"{k} {v:.1f}" for k, v in seeded.phases.items())
        print(f"seeded in {seeded.seconds:.1f} s ({phases})", flush=True)
        with engine.connect() as conn:
            args.server_version = conn.scalar(text("SHOW server_version"))
            log_before = conn.scalar(select(func.count()).select_from(AccessLogEntry)) or 0
        if args.explain:
            explain(engine, settings, seeded.caregiver_uids[0])
            os.environ.pop(EMULATOR_HOST_VAR, None)

        uids = seeded.caregiver_uids[: args.tokens or None]
        args.tokens = len(uids)
        tokens = [
            emulator_token(settings, uid, f"{uid}@example.org", uid, timedelta(hours=2))
            for uid in uids
        ]
        healthz = write_lua(folder, "healthz", "/healthz", [])
        today = write_lua(folder, "today", "/me/today", tokens)
        server_log = folder / "gunicorn.log"
        url = schema_url(args.pg_url, schema)
        load_before = os.getloadavg()
        with gunicorn(url, args.workers, server_log) as server:
            base = server.base
            sample = sanity_check(base, tokens[0], args.per_caregiver)
            print(f"gunicorn up at {base}; warming up and loading ...", flush=True)
            shape = (args.connections, args.threads)
            probe = CpuProbe(server.pid, engine)
            before = probe.sample()
            first = first_opens(base, tokens, args.connections)
            first.cpu_ms = probe.per_request(before, probe.sample(), first.requests)
            run_wrk(wrk, base, healthz, "warm-up", args.warmup, *shape)
            run_wrk(wrk, base, today, "warm-up", args.warmup, *shape)
            results = []
            for name, script in (
                ("GET /healthz (baseline)", healthz),
                ("GET /me/today (caregiver of 5)", today),
            ):
                before = probe.sample()
                result = run_wrk(wrk, base, script, name, args.duration, *shape)
                result.cpu_ms = probe.per_request(before, probe.sample(), result.requests)
                results.append(result)
            load = (load_before, os.getloadavg())
        if args.show_wrk:
            for r in results:
                print(f"\n--- wrk: {r.name}\n{r.raw}")
        with engine.connect() as conn:
            log_after = conn.scalar(select(func.count()).select_from(AccessLogEntry)) or 0
        print(f"access-log rows written during the run: {log_after - log_before:,}")
        ok = report([*results, first], seeded, sample, args, load)
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main, "gunicorn stopped, schema dropped")
