"""Issue 16: how fast the console's panel and worklist pages render for a 2,000-patient panel,
in the system Chromium, with the API's own figures for the same data in the same run.

    python benchmarks/console_pages.py [--db postgresql|sqlite] [--patients 2000] [--rounds 20]

What it does, then stops by itself (everything on 127.0.0.1):

1. a throwaway database (a schema in the PostgreSQL at 127.0.0.1:5432/test, dropped
   afterwards, or a temporary SQLite file), migrated, with the demo people plus one care team
   whose coordinator has ``--patients`` patients, each with a PHQ-9 answer, a booked
   appointment, fresh 7- and 30-day adherence snapshots (what the worker's sweep keeps) and
   one or two open worklist items (1 in 10 urgent);
2. the app served by werkzeug in a thread (threaded), the coordinator's development token put
   in the page's sessionStorage (as the sign-in page does);
3. for each round, loads ``/console/panel`` and ``/console/worklist`` from scratch and times
   from navigation start to the moment the page shows its data (a MutationObserver injected
   before the page's own script notes when the panel's table body has its first page of
   rows, and when the worklist has its items); then times a re-sort of the whole panel (by
   the server: from the change of order to the new first page drawn);
4. times, from Python over HTTP on the same server, the panel's first page as the page asks
   for it (``GET /care-teams/{id}/panel?sort=items&page_size=100``), the same sorted by
   30-day adherence (every patient's snapshot read), ``GET /worklist?page_size=100`` and the
   baseline ``GET /healthz``.

Prints p50/p95/max per measure. Goal (issue 16): both pages under 300 ms p95 on PostgreSQL.
Needs chromium and chromedriver (``apt-get install chromium chromium-driver``) and selenium.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import db
from backend.app import create_app
from backend.config import Settings
from backend.db import make_engine
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.migrate import upgrade
from backend.models import (
    AdherenceSnapshot,
    Appointment,
    CareTeamMember,
    CheckinResponse,
    Enrollment,
    WorkItem,
)
from backend.services.careteams import add_team
from benchmarks._seed import PG_URL, add_patients, add_users, insert_many, throwaway_schema
from tests.browser import Browser, LiveServer, skip_reason

COORDINATOR = "bench-coordinator-00000"
# Runs before the page's own script (CDP), so it sees the page's first render.
OBSERVER = """
window.__rendered = {};
new MutationObserver(() => {
  const body = document.querySelector('table.panel tbody');
  const summary = document.querySelector('main .summary');
  if (body && body.children.length && summary && summary.textContent.startsWith('Showing')
      && !window.__rendered.panel)
    window.__rendered.panel = performance.now();
  if (document.querySelector('ol.items li.item') && !window.__rendered.worklist)
    window.__rendered.worklist = performance.now();
}).observe(document, {childList: true, subtree: true});
"""
# A re-sort: the order changed, then the table no longer busy (its new rows drawn).
RESORT = """
const done = arguments[arguments.length - 1];
const s = document.querySelector('select[name=sort]');
const table = document.querySelector('table.panel');
const t = performance.now();
new MutationObserver((_, o) => {
  if (table.getAttribute('aria-busy') !== 'false') return;
  o.disconnect(); document.body.offsetHeight; done(performance.now() - t);
}).observe(table, {attributes: true, attributeFilter: ['aria-busy']});
s.value = s.value === 'score' ? 'name' : 'score';
s.dispatchEvent(new Event('change'));
"""


@contextlib.contextmanager
def database(kind: str) -> Iterator[Engine]:
    if kind == "postgresql":
        with throwaway_schema(PG_URL, prefix="cc_bench_console") as (engine, _schema):
            upgrade(engine)
            yield engine
        return
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.sqlite'}")
        upgrade(engine)
        yield engine
        engine.dispose()


def seed(engine: Engine, patients: int) -> int:
    at = datetime.now(UTC)
    db.init_engine(engine)
    session = db.session()
    load_fixtures(session)
    team = add_team(session, "Benchmark Health", "Bench Panel")
    session.commit()
    db.session.remove()
    with engine.begin() as conn:
        coordinator = add_users(conn, "bench-coordinator", 1, at)[0]
        conn.execute(
            insert(CareTeamMember),
            [{"care_team_id": team.id, "user_id": coordinator, "role": "nurse"}],
        )
        users = add_users(conn, "bench-patient", patients, at)
        names = [f"Patient {i:05d}" for i in range(patients)]
        ids = add_patients(conn, users, names, at)
        insert_many(
            conn,
            Enrollment,
            [{"care_team_id": team.id, "patient_id": p, "enrolled_at": at} for p in ids],
        )
        insert_many(
            conn,
            CheckinResponse,
            [_answer(p, u, i, at) for i, (p, u) in enumerate(zip(ids, users, strict=True))],
        )
        insert_many(conn, Appointment, [_visit(p, coordinator, i, at) for i, p in enumerate(ids)])
        insert_many(
            conn,
            AdherenceSnapshot,
            [_tally(p, d, i, at) for i, p in enumerate(ids) for d in (7, 30)],
        )
        items = [_item(p, "missed_doses", i, at) for i, p in enumerate(ids)]
        items += [_item(p, "checkin_flag", i, at) for i, p in enumerate(ids) if i % 3 == 0]
        insert_many(conn, WorkItem, items)
    return int(team.id)


def _answer(patient: int, user: int, i: int, at: datetime) -> dict[str, Any]:
    score = i % 28
    band = ["minimal", "mild", "moderate", "moderately_severe", "severe"][min(score // 5, 4)]
    return {
        "patient_id": patient,
        "template_code": "PHQ-9",
        "answers": {},
        "score": score,
        "band": band,
        "flags": [],
        "raised": [],
        "answered_by_user_id": user,
        "at": at - timedelta(days=i % 20),
    }


def _visit(patient: int, by: int, i: int, at: datetime) -> dict[str, Any]:
    start = at + timedelta(days=1 + i % 30, hours=i % 8)
    return {
        "patient_id": patient,
        "title": "Follow-up visit",
        "type": "in_person",
        "location": "Clinic",
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "time_zone": "America/New_York",
        "status": "booked",
        "reminder_lead_minutes": [],
        "created_by_user_id": by,
        "updated_by_user_id": by,
    }


def _tally(patient: int, days: int, i: int, at: datetime) -> dict[str, Any]:
    scheduled = days * 2
    taken = scheduled - (i % 7)
    return {
        "patient_id": patient,
        "days": days,
        "computed_at": at,
        "scheduled": scheduled,
        "taken": taken,
        "late": 0,
        "skipped": 0,
        "missed": scheduled - taken,
        "pending": 0,
        "days_with_doses": days,
        "days_covered": days - (i % 7),
        "dose_adherence": taken / scheduled,
        "pdc": (days - (i % 7)) / days,
    }


def _item(patient: int, kind: str, i: int, at: datetime) -> dict[str, Any]:
    urgent = kind == "checkin_flag" and i % 10 == 0
    return {
        "patient_id": patient,
        "kind": kind,
        "key": f"{kind}:{i}",
        "urgent": urgent,
        "title": f"{kind.replace('_', ' ')} for patient {i:05d}",
        "detail": {},
        "status": "open",
        "opened_at": at - timedelta(minutes=i),
        "evidence_at": at,
        "updated_at": at,
    }


def quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   max {ordered[-1]:7.1f} ms"
    )


def http_ms(url: str, token: str | None) -> float:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return (time.perf_counter() - t0) * 1000


def page_ms(browser: Browser, path: str, key: str) -> float:
    browser.open(path)
    browser.wait(
        lambda d: d.execute_script(f"return window.__rendered && window.__rendered.{key}"), 60
    )
    return float(browser.driver.execute_script(f"return window.__rendered.{key}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        raise SystemExit(reason)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with database(args.db) as engine:
        t0 = time.perf_counter()
        team = seed(engine, args.patients)
        print(
            f"seeded {args.patients} patients on one panel ({args.db}) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        settings = Settings(
            env="development", firebase_auth_emulator_host="127.0.0.1:9099", log_level="WARNING"
        )
        app = create_app(settings, ENGINE=engine)
        token = emulator_token(settings, COORDINATOR, lifetime=timedelta(hours=2))
        results: dict[str, list[float]] = {}
        with LiveServer(app) as server, tempfile.TemporaryDirectory() as shots:
            browser = Browser(server.url, Path(shots))
            try:
                browser.driver.execute_cdp_cmd(
                    "Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER}
                )
                browser.open("/console/")
                browser.driver.execute_script(
                    "sessionStorage.setItem('care-console.token', arguments[0]);"
                    "sessionStorage.setItem('care-console.name', 'Benchmark nurse');",
                    token,
                )
                for i in range(args.rounds + 2):  # two warm-up rounds, not counted
                    panel = page_ms(browser, "/console/panel", "panel")
                    resort = browser.driver.execute_async_script(RESORT)
                    worklist = page_ms(browser, "/console/worklist", "worklist")
                    if i >= 2:
                        results.setdefault(
                            "page /console/panel (load to first 100 rows shown)", []
                        ).append(panel)
                        results.setdefault(
                            "  re-sort by the server, next first page drawn", []
                        ).append(float(resort))
                        results.setdefault(
                            "page /console/worklist (load to items shown)", []
                        ).append(worklist)
            finally:
                browser.quit()
            api = {
                "GET /healthz (baseline)": (f"{server.url}/healthz", None),
                "GET /care-teams/{id}/panel?sort=items&page_size=100": (
                    f"{server.url}/care-teams/{team}/panel?sort=items&page_size=100",
                    token,
                ),
                "  ?sort=adherence30&page_size=100": (
                    f"{server.url}/care-teams/{team}/panel?sort=adherence30&page_size=100",
                    token,
                ),
                "GET /worklist?page_size=100": (f"{server.url}/worklist?page_size=100", token),
            }
            for _ in range(2):
                for url, tok in api.values():
                    http_ms(url, tok)
            for _ in range(args.rounds):
                for name, (url, tok) in api.items():
                    results.setdefault(name, []).append(http_ms(url, tok))
    print(f"\n{args.rounds} rounds, one client, werkzeug threaded server, headless Chromium:")
    for name, samples in results.items():
        print(f"  {name:<52} {quantiles(samples)}")


if __name__ == "__main__":
    main()
