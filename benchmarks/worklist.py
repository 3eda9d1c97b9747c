"""Issue 6: the coordinator's worklist under load, and the panel adherence beside it.

    python benchmarks/worklist.py [--patients 10000] [--teams 5] [--duration 20]
                                  [--connections 8] [--adherence-requests 50]
                                  [--adherence-cold-requests 5] [--explain]

What it does, in one run, and then stops by itself (Ctrl-C is fine at any point):

1. creates a throwaway schema in the PostgreSQL at 127.0.0.1:5432/test, migrates it and seeds
   it with ``benchmarks/today_view.seed``: 10,000 patients with 5 medicines each and 90 days
   of dose logs (~5 million rows, streamed with COPY), patients differing in habits (most
   forget 0.2-2 % of doses, a quarter 2-8 %, a tenth 8-35 %);
2. puts them on 5 care teams of 2,000 patients, one coordinator (a user with an emulator
   token) per team, and adds a weekly PHQ-9 per patient over the 90 days (scored with the
   app's own scoring; totals mostly none or mild, some severe, item 9 above 0 now and then);
3. runs the real sweep (``backend.services.sweep.run_sweep``: the missed-dose and
   low-adherence rules over every enrolled patient, which also write their 7- and 30-day
   adherence snapshots) and prints its time and patients/s;
   raises the last 14 days' worrying check-ins with ``raise_work_item`` (item 9 above 0: an urgent
   ``safety`` item; a total of 20 or more: a ``checkin_flag``), while older ones are stored
   as already resolved (the table holds history, as it will in production); then
   ``VACUUM (ANALYZE)`` of the tables written, as autovacuum would do shortly after;
4. starts ``carecompanion serve`` (gunicorn, 2 workers), checks one worklist page, and runs
   wrk at 8 connections against ``GET /healthz`` (the trivial baseline), ``GET /worklist``
   and ``GET /worklist?kind=missed_doses&page=2`` (both rotating the coordinators' tokens),
   each after a warm-up; then times ``GET /care-teams/{id}/adherence?days=30`` with
   sequential requests twice: served from the sweep's snapshots (minutes old, well within
   their 20 minutes), and cold (the team's snapshots deleted before each request, untimed, so
   the whole 2,000-patient panel is computed live and stored, as before the snapshots);
5. prints requests/s, p50/p95/p99, the ratio to the baseline, the CPU per request (gunicorn,
   its PostgreSQL sessions, wrk; from /proc) and the machine's load average with each
   figure; stops gunicorn and drops the schema (also on errors and Ctrl-C).

``--explain`` also prints the statement counts and ``EXPLAIN (ANALYZE, BUFFERS)`` of every
SELECT one worklist page (and one panel-adherence page) runs. Nothing talks beyond
127.0.0.1. The goal from issue 6: ``GET /worklist`` p95 under 200 ms at 8 connections with no
failed request; the exit status is 0 when both worklist runs meet it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.checkins.instruments import PHQ9_ITEM9, SAFETY, builtins, score
from backend.config import EMULATOR_HOST_VAR
from backend.devtokens import emulator_token
from backend.models import (
    AccessLogEntry,
    AdherenceSnapshot,
    CheckinResponse,
    Enrollment,
    Patient,
    User,
    WorkItem,
)
from backend.services.careteams import add_member, add_team
from backend.services.sweep import run_sweep
from backend.services.worklist import raise_work_item
from benchmarks._seed import PG_URL, insert_many, schema_url
from benchmarks._server import CpuProbe, gunicorn, http, prepare_run, run_main, workspace
from benchmarks._tools import Result, print_results, run_wrk
from benchmarks.today_view import Seeded, explain, seed, write_lua

ORGANIZATION = "Bench Health"
GOAL_P95_MS = 200.0
RECENT = timedelta(days=14)  # worrying answers newer than this are still on the worklist
ANALYZED = (
    "users",
    "care_teams",
    "care_team_members",
    "enrollments",
    "checkin_responses",
    "work_items",
    "work_item_events",
    "reminders",
    "access_log",
)
LoadAvg = tuple[float, float, float]


# --------------------------------------------------------------------------- seeding


def habits(rng: random.Random) -> tuple[float, float]:
    """One patient's chances of forgetting and of skipping a scheduled dose."""
    roll = rng.random()
    if roll < 0.65:
        forget = rng.uniform(0.002, 0.02)
    elif roll < 0.9:
        forget = rng.uniform(0.02, 0.08)
    else:
        forget = rng.uniform(0.08, 0.35)
    return forget, forget * rng.uniform(0.2, 0.5)


def _baseline_severity(rng: random.Random) -> float:
    """A patient's usual PHQ-9 total: mostly none or mild, some moderate, a few severe."""
    roll = rng.random()
    for share, low, high in ((0.55, 0, 4), (0.80, 5, 9), (0.92, 10, 14), (0.985, 15, 19)):
        if roll < share:
            return rng.uniform(low, high)
    return rng.uniform(20, 26)


def _item9_chance(total: int) -> float:
    if total < 10:
        return 0.004
    if total < 15:
        return 0.04
    if total < 20:
        return 0.12
    return 0.25


def phq9_answers(rng: random.Random, usual: float) -> dict[str, str]:
    """One week's PHQ-9 answers (LOINC item -> LOINC answer code) around ``usual``."""
    instrument = builtins()["PHQ-9"]
    others = [i for i in instrument.items if i.loinc != PHQ9_ITEM9]
    target = max(0, min(3 * len(others), round(usual + rng.gauss(0, 2.5))))
    values = dict.fromkeys((i.loinc for i in others), 0)
    for _ in range(target):
        loinc = rng.choice([k for k, v in values.items() if v < 3])
        values[loinc] += 1
    values[PHQ9_ITEM9] = rng.choice((1, 1, 1, 2, 3)) if rng.random() < _item9_chance(target) else 0
    return {i.loinc: i.code_of(values[i.loinc]) for i in instrument.items}


@dataclass
class Panel:
    team_id: int
    coordinator_uid: str
    coordinator_id: int
    patients: int


@dataclass
class World:
    seeded: Seeded
    panels: list[Panel]
    checkins: int
    resolved_history: int
    phases: dict[str, float] = field(default_factory=dict)
    sweep_seconds: float = 0.0
    sweep_patients: int = 0
    sweep_counts: dict[str, int] = field(default_factory=dict)
    swept_at: datetime | None = None
    raised: dict[str, int] = field(default_factory=dict)
    raise_seconds: float = 0.0
    open_per_panel: list[dict[str, int]] = field(default_factory=list)
    snapshot_ages: tuple[float, float, int] = (0.0, 0.0, 0)


def seed_teams_and_checkins(
    engine: Engine, teams: int, rng: random.Random, now: datetime, history_days: int
) -> tuple[list[Panel], list[dict[str, Any]]]:
    """Teams, coordinators, enrollments (patient i on team i mod ``teams``) and weekly PHQ-9s;
    returns the panels and the check-ins that raised a flag (newest last)."""
    with Session(engine) as s:
        rows = s.execute(
            select(Patient.id, Patient.user_id)
            .join(User, User.id == Patient.user_id)
            .where(User.firebase_uid.like("bench-patient-%"))
            .order_by(Patient.id)
        ).all()
        panels = []
        for k in range(teams):
            team = add_team(s, ORGANIZATION, f"Panel {k + 1}")
            uid = f"bench-coordinator-{k}"
            member = add_member(
                s, team.id, uid, f"Coordinator {k}", f"{uid}@example.org", "care_coordinator"
            )
            s.execute(update(User).where(User.id == member.user_id).values(last_seen_at=now))
            panels.append(Panel(team.id, uid, member.user_id, 0))
        s.commit()

    enrollments = []
    for i, (pid, _) in enumerate(rows):
        panel = panels[i % teams]
        panel.patients += 1
        enrollments.append(
            {
                "care_team_id": panel.team_id,
                "patient_id": pid,
                "enrolled_at": now - timedelta(days=history_days + rng.randrange(30, 400)),
            }
        )
    instrument = builtins()["PHQ-9"]
    responses = []
    for pid, user_id in rows:
        usual = _baseline_severity(rng)
        first = now - timedelta(days=rng.uniform(0, 7))
        for week in range(history_days // 7 + 1):
            at = first - timedelta(days=7 * week)
            if at < now - timedelta(days=history_days):
                break
            answers = phq9_answers(rng, usual)
            result = score(instrument, answers)  # the app's own scoring
            responses.append(
                {
                    "patient_id": pid,
                    "template_code": instrument.code,
                    "answers": answers,
                    "score": result.total,
                    "band": result.band,
                    "flags": list(result.flags),
                    "answered_by_user_id": user_id,
                    "on_behalf": False,
                    "at": at,
                }
            )
    with engine.begin() as conn:
        insert_many(conn, Enrollment, enrollments)
        insert_many(conn, CheckinResponse, responses)
        flagged = [
            {"id": rid, "patient_id": pid, "score": total, "flags": flags, "at": at}
            for rid, pid, total, flags, at in conn.execute(
                select(
                    CheckinResponse.id,
                    CheckinResponse.patient_id,
                    CheckinResponse.score,
                    CheckinResponse.flags,
                    CheckinResponse.at,
                ).order_by(CheckinResponse.at)
            )
            if SAFETY in (flags or []) or (total or 0) >= 20
        ]
    return panels, flagged


def _flags_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """What a worrying PHQ-9 raises: (kind, key, urgent, title, detail) as raise_work_item takes."""
    rid, total = response["id"], response["score"]
    detail = {"checkin_response_id": rid, "template": "PHQ-9", "score": total}
    out = []
    if SAFETY in response["flags"]:
        out.append(
            {
                "kind": "safety",
                "key": f"checkin:{rid}:item9_above_0",
                "urgent": True,
                "title": "PHQ-9 item 9 answered above 0",
                "detail": detail,
            }
        )
    if total >= 20:
        out.append(
            {
                "kind": "checkin_flag",
                "key": f"checkin:{rid}:score_at_least_20",
                "urgent": False,
                "title": f"PHQ-9 total {total} (severe)",
                "detail": detail,
            }
        )
    return out


def store_resolved_history(
    engine: Engine,
    flagged: list[dict[str, Any]],
    coordinators: dict[int, int],
    now: datetime,
    rng: random.Random,
) -> int:
    """Older worrying answers as items a coordinator resolved long ago (bulk: no trail)."""
    rows = []
    for response in flagged:
        if response["at"] >= now - RECENT:
            continue
        for flag in _flags_of(response):
            resolved = response["at"] + timedelta(hours=rng.uniform(0.5, 48))
            rows.append(
                {
                    **flag,
                    "patient_id": response["patient_id"],
                    "status": "resolved",
                    "opened_at": response["at"],
                    "evidence_at": response["at"],
                    "updated_at": resolved,
                    "acknowledged_by_user_id": coordinators[response["patient_id"]],
                    "acknowledged_at": resolved - timedelta(minutes=20),
                    "resolved_by_user_id": coordinators[response["patient_id"]],
                    "resolved_at": resolved,
                    "resolution_note": "Called the patient; safety plan reviewed.",
                }
            )
    with engine.begin() as conn:
        insert_many(conn, WorkItem, rows)
    return len(rows)


def raise_recent(engine: Engine, flagged: list[dict[str, Any]], now: datetime) -> dict[str, int]:
    """The last 14 days' worrying answers through the real ``raise_work_item`` (with its trail and
    the urgent pushes to the care team), in one transaction as a producer would."""
    raised: dict[str, int] = {}
    with Session(engine) as s:
        for response in flagged:
            if response["at"] < now - RECENT:
                continue
            for flag in _flags_of(response):
                item = raise_work_item(
                    s,
                    patient_id=response["patient_id"],
                    evidence_at=response["at"],
                    at=response["at"],
                    **flag,
                )
                if item is not None:
                    raised[flag["kind"]] = raised.get(flag["kind"], 0) + 1
        s.commit()
    return raised


def open_items_per_panel(engine: Engine, panels: list[Panel]) -> list[dict[str, int]]:
    out = []
    with engine.connect() as conn:
        for panel in panels:
            rows = conn.execute(
                select(WorkItem.kind, WorkItem.urgent, func.count())
                .join(Enrollment, Enrollment.patient_id == WorkItem.patient_id)
                .where(
                    Enrollment.care_team_id == panel.team_id,
                    Enrollment.ended_at.is_(None),
                    WorkItem.status != "resolved",
                )
                .group_by(WorkItem.kind, WorkItem.urgent)
            )
            counts: dict[str, int] = {}
            for kind, urgent, n in rows:
                counts[kind] = counts.get(kind, 0) + n
                if urgent:
                    counts["urgent"] = counts.get("urgent", 0) + n
            out.append(counts)
    return out


def build_world(engine: Engine, args: argparse.Namespace) -> World:
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    seeded = seed(engine, args.patients, 0, 1, args.history_days, rng, habits=habits)
    phases = {f"seed: {k}": v for k, v in seeded.phases.items()}
    print(f"  seeded {seeded.dose_logs:,} dose logs in {seeded.seconds:.1f} s", flush=True)

    now = datetime.now(UTC)
    t = time.perf_counter()
    panels, flagged = seed_teams_and_checkins(engine, args.teams, rng, now, args.history_days)
    with engine.connect() as conn:
        checkins = conn.scalar(select(func.count()).select_from(CheckinResponse)) or 0
        coordinators = {
            pid: next(p.coordinator_id for p in panels if p.team_id == team)
            for pid, team in conn.execute(
                select(Enrollment.patient_id, Enrollment.care_team_id).where(
                    Enrollment.care_team_id.in_([p.team_id for p in panels])
                )
            )
        }
    history = store_resolved_history(engine, flagged, coordinators, now, rng)
    phases["teams, check-ins, resolved history"] = time.perf_counter() - t
    with engine.begin() as conn:
        for table in ANALYZED:
            conn.execute(text(f"ANALYZE {table}"))
    print(f"  {checkins:,} check-ins, {history:,} resolved items; sweeping ...", flush=True)

    world = World(seeded, panels, checkins, history, phases)
    t = time.perf_counter()
    world.sweep_counts = run_sweep(engine, at=now)
    world.swept_at = now
    world.sweep_seconds = time.perf_counter() - t
    with engine.connect() as conn:
        world.sweep_patients = (
            conn.scalar(
                select(func.count(func.distinct(Enrollment.patient_id))).where(
                    Enrollment.ended_at.is_(None)
                )
            )
            or 0
        )
    phases["sweep"] = world.sweep_seconds

    t = time.perf_counter()
    world.raised = raise_recent(engine, flagged, now)
    world.raise_seconds = phases["raise_work_item (recent check-ins)"] = time.perf_counter() - t
    # What autovacuum does within a minute or two of so many new rows (our tables only: the
    # database is shared): statistics, and the visibility map that index-only scans need.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ANALYZED:
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    world.open_per_panel = open_items_per_panel(engine, panels)
    phases["total"] = time.perf_counter() - t0
    return world


# --------------------------------------------------------------------------- requests


def check_page(base: str, path: str, token: str, want_items: int) -> dict[str, Any]:
    status, headers, body = http(base + path, token)
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}: {body[:500]!r}")
    items = json.loads(body)
    if len(items) != want_items:
        raise SystemExit(f"GET {path}: expected {want_items} items, got {len(items)}")
    pagination = json.loads(headers.get("X-Pagination", "{}"))
    return {"items": items, "total": pagination.get("total"), "bytes": len(body)}


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]  # nearest rank


def sequential(
    name: str,
    base: str,
    paths: list[str],
    tokens: list[str],
    count: int,
    probe: CpuProbe,
    before_each: Callable[[int], None] | None = None,
) -> Result:
    """``count`` requests one after another (path and token rotating), after one of each;
    ``before_each(i)`` runs before request ``i``, untimed (its database CPU is counted)."""
    for path, token in zip(paths, tokens, strict=True):
        http(base + path, token)  # warm-up
    before = probe.sample()
    latencies: list[float] = []
    errors = 0
    for i in range(count):
        if before_each is not None:
            before_each(i % len(paths))
        t = time.perf_counter()
        status, _, _ = http(base + paths[i % len(paths)], tokens[i % len(tokens)])
        latencies.append(1000 * (time.perf_counter() - t))
        errors += status != 200
    return Result(
        name=name,
        requests=count,
        rps=count / (sum(latencies) / 1000),
        p50=_percentile(latencies, 50),
        p95=_percentile(latencies, 95),
        p99=_percentile(latencies, 99),
        errors={"status": errors} if errors else {},
        raw="",
        cpu_ms=probe.per_request(before, probe.sample(), count),
    )


def snapshot_ages(
    base: str, paths: list[str], tokens: list[str], world: World
) -> tuple[float, float, int]:
    """How old the first page's numbers were on each panel (min and max seconds, now), and how
    many of its rows came from the sweep (``computed_at`` its instant): the honest check that
    the snapshot run read the sweep's snapshots."""
    at = datetime.now(UTC)
    ages: list[float] = []
    swept = 0
    for path, token in zip(paths, tokens, strict=True):
        _, _, body = http(base + path, token)
        for row in json.loads(body):
            computed = datetime.fromisoformat(row["computed_at"])
            ages.append((at - computed).total_seconds())
            swept += computed == world.swept_at
    return min(ages), max(ages), swept


# --------------------------------------------------------------------------- report


def report(
    results: list[tuple[Result, LoadAvg]],
    world: World,
    sample: dict[str, Any],
    args: argparse.Namespace,
    load_before: LoadAvg,
) -> bool:
    seeded = world.seeded
    cpu = platform.processor() or platform.machine()
    print(
        f"\ncare-companion worklist (issue 6) -- PostgreSQL {args.server_version}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({cpu}); wrk and gunicorn share them"
    )
    print(
        f"data: {seeded.patients:,} patients on {len(world.panels)} care teams of "
        f"{world.panels[0].patients:,}, {seeded.medications:,} medicines, "
        f"{seeded.dose_logs:,} dose logs ({args.history_days} days + today), "
        f"{world.checkins:,} PHQ-9 check-ins, {world.resolved_history:,} resolved items"
    )
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in world.phases.items()))
    rate = world.sweep_patients / world.sweep_seconds if world.sweep_seconds else 0.0
    print(
        f"sweep (run_sweep, missed_doses + low_adherence): {world.sweep_patients:,} patients in "
        f"{world.sweep_seconds:.1f} s = {rate:.0f} patients/s; unresolved after it: "
        f"{world.sweep_counts}"
    )
    print(
        f"raise_work_item for the last {RECENT.days} days' worrying check-ins: {world.raised} in "
        f"{world.raise_seconds:.1f} s"
    )
    for panel, counts in zip(world.panels, world.open_per_panel, strict=True):
        total = sum(v for k, v in counts.items() if k != "urgent")
        print(
            f"  team {panel.team_id} ({panel.patients:,} patients): {total:,} open items {counts}"
        )
    print(
        f"load: gunicorn {args.workers} sync workers, wrk {args.threads} threads x "
        f"{args.connections} connections, {args.duration} s each after {args.warmup} s warm-up, "
        f"rotating {len(world.panels)} coordinators' tokens; a worklist page: 10 items of "
        f"{sample['total']:,}, {sample['bytes']:,} bytes; panel adherence: "
        f"{args.adherence_requests} sequential requests from snapshots and "
        f"{args.adherence_cold_requests} cold (the team's snapshots deleted first, untimed), "
        f"each after one per team"
    )
    young, old, swept = world.snapshot_ages
    print(
        f"panel adherence from snapshots: the first pages' numbers were {young:.0f}-{old:.0f} s "
        f"old, {swept} of their {10 * len(world.panels)} rows from the sweep"
    )
    print_results(
        [r for r, _ in results],
        [f"{l1:.2f} {l5:.2f}" for _, (l1, l5, _) in results],
        note="load 1/5 min",
    )
    base = results[0][0]
    lists = [r for r, _ in results[1:3]]
    ok = True
    for r in lists:
        met = r.p95 < GOAL_P95_MS and not r.errors
        ok = ok and met
        print(
            f"{r.name}: {r.rps / base.rps:.2f}x the baseline's requests/s, p95 {r.p95:.1f} ms "
            f"(goal < {GOAL_P95_MS:.0f} ms at {args.connections} connections, no errors: "
            f"{'met' if met else 'MISSED'})"
        )
    if base.cpu_ms:
        server = {r.name: r.cpu_ms["gunicorn"] + r.cpu_ms["postgres"] for r, _ in results}
        print(
            "server CPU per request (gunicorn + its PostgreSQL sessions): "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in server.items())
        )
    print(
        f"machine load average (1/5/15 min) before the server started "
        f"{' '.join(f'{x:.2f}' for x in load_before)}; more than {os.cpu_count()} means other "
        "work competed for the CPUs"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=5, help="care teams (one coordinator each)")
    parser.add_argument("--history-days", type=int, default=90, help="days of dose logs")
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=5, help="seconds per endpoint, not counted")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--adherence-requests", type=int, default=50)
    parser.add_argument(
        "--adherence-cold-requests", type=int, default=5, help="panel adherence computed live"
    )
    parser.add_argument("--adherence-days", type=int, default=30, choices=(7, 30, 90))
    parser.add_argument("--explain", action="store_true", help="print the worklist's plans")
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own reports")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    if args.teams < 1 or args.patients < 20 * args.teams:
        parser.error("need at least 20 patients per team")
    wrk, settings = prepare_run()
    with workspace(args.pg_url, "worklist") as (engine, schema, folder):
        print(
            f"schema {schema}: seeding {args.patients:,} patients, {args.history_days} days ...",
            flush=True,
        )
        world = build_world(engine, args)
        with engine.connect() as conn:
            args.server_version = conn.scalar(text("SHOW server_version"))
            log_before = conn.scalar(select(func.count()).select_from(AccessLogEntry)) or 0

        panels = world.panels
        worklist_path = "/worklist"
        page2_path = "/worklist?kind=missed_doses&page=2"
        adherence_paths = [
            f"/care-teams/{p.team_id}/adherence?days={args.adherence_days}" for p in panels
        ]
        if args.explain:
            for path in (worklist_path, page2_path, adherence_paths[0]):
                explain(engine, settings, panels[0].coordinator_uid, path)
            os.environ.pop(EMULATOR_HOST_VAR, None)

        tokens = [
            emulator_token(
                settings,
                p.coordinator_uid,
                f"{p.coordinator_uid}@example.org",
                f"Coordinator {k}",
                timedelta(hours=2),
            )
            for k, p in enumerate(panels)
        ]
        scripts = {
            "GET /healthz (baseline)": write_lua(folder, "healthz", "/healthz", []),
            "GET /worklist": write_lua(folder, "worklist", worklist_path, tokens),
            "GET /worklist?kind=missed_doses&page=2": write_lua(
                folder, "page2", page2_path, tokens
            ),
        }
        url = schema_url(args.pg_url, schema)
        load_before = os.getloadavg()
        results: list[tuple[Result, LoadAvg]] = []
        with gunicorn(url, args.workers, folder / "gunicorn.log") as server:
            base = server.base
            sample = check_page(base, worklist_path, tokens[0], 10)
            check_page(base, page2_path, tokens[0], 10)
            check_page(base, adherence_paths[0], tokens[0], 10)
            print(f"gunicorn up at {base}; warming up and loading ...", flush=True)
            shape = (args.connections, args.threads)
            for script in scripts.values():
                run_wrk(wrk, base, script, "warm-up", args.warmup, *shape)
            probe = CpuProbe(server.pid, engine)
            for name, script in scripts.items():
                before = probe.sample()
                result = run_wrk(wrk, base, script, name, args.duration, *shape)
                result.cpu_ms = probe.per_request(before, probe.sample(), result.requests)
                results.append((result, os.getloadavg()))
                print(f"  {name}: {result.rps:.0f} req/s, p95 {result.p95:.1f} ms", flush=True)
            name = f"GET /care-teams/{{id}}/adherence?days={args.adherence_days} snapshots"
            result = sequential(name, base, adherence_paths, tokens, args.adherence_requests, probe)
            results.append((result, os.getloadavg()))
            world.snapshot_ages = snapshot_ages(base, adherence_paths, tokens, world)

            def forget(k: int) -> None:
                with engine.begin() as conn:
                    conn.execute(
                        delete(AdherenceSnapshot).where(
                            AdherenceSnapshot.days == args.adherence_days,
                            AdherenceSnapshot.patient_id.in_(
                                select(Enrollment.patient_id).where(
                                    Enrollment.care_team_id == panels[k].team_id
                                )
                            ),
                        )
                    )

            name = f"GET /care-teams/{{id}}/adherence?days={args.adherence_days} cold"
            cold = args.adherence_cold_requests
            result = sequential(name, base, adherence_paths, tokens, cold, probe, forget)
            results.append((result, os.getloadavg()))
        if args.show_wrk:
            for r, _ in results:
                print(f"\n--- wrk: {r.name}\n{r.raw}")
        with engine.connect() as conn:
            log_after = conn.scalar(select(func.count()).select_from(AccessLogEntry)) or 0
        print(f"access-log rows written during the run: {log_after - log_before:,}")
        ok = report(results, world, sample, args, load_before)
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main, "gunicorn stopped, schema dropped")
