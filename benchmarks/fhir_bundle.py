"""FHIR export and import, with the JSON API's own reads of the same patient as the baseline.

    python benchmarks/fhir_bundle.py [--db sqlite|postgresql] [--n 30] [--shared PATH]

In one run, on a fresh database (a temporary SQLite file, or a throwaway schema in the local
PostgreSQL, dropped afterwards), then it stops by itself:

1. the demo people, and for María five medicines (QD, BID, TID, one at bedtime, one weekly)
   with a year of logged doses (2,608 dose-log rows) and her demo appointments and plan;
2. times ``GET /fhir/Patient/{id}/$everything`` as María and as Ana (a caregiver: the access
   log is written too) against the JSON API's reads of the same data --
   ``GET /me/today``, ``GET /patients/{id}/medications`` and one 100-row page of
   ``GET /patients/{id}/doses`` -- round-robin, in-process with Flask's test client;
3. imports every shared bundle (the 8 Synthea bundles, the Synthea care-team bundle and the
   71 HL7 R4 examples from ``../shared/data/fhir`` or ``CARECOMPANION_SHARED_DATA``; skipped
   when absent) as the operator's command does (one transaction per file), then the same
   again (everything ``unchanged``), and prints both times.

Goals (issue 15): the export under 500 ms on PostgreSQL; the import of all shared bundles
under 30 s, the re-import faster still.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import db
from backend.app import create_app
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.migrate import upgrade
from backend.models import DoseLog, Medication, User
from backend.services.fhir_import import Report, import_as_operator
from benchmarks._seed import PG_URL, insert_many
from benchmarks.api_latency import fresh_engine

EMULATOR = "127.0.0.1:9099"  # never contacted
ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = {
    "Metformin": ({"code": {"text": "BID"}}, ("08:00", "18:30")),
    "Lisinopril": ({"code": {"text": "QD"}}, ("08:00",)),
    "Amoxicillin": (
        {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
        ("08:00", "13:00", "20:00"),
    ),
    "Atorvastatin": ({"repeat": {"when": ["HS"]}}, ("22:00",)),
    "Alendronate": ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, ("07:00",)),
}


def seed_year(maria_id: int, by_user_id: int, zone: str) -> int:
    """Five medicines and a year of doses, inserted in bulk (what a year of logging leaves)."""
    session = db.session()
    start = datetime.now(UTC) - timedelta(days=365)
    rows = []
    for name, (timing, times) in SCHEDULES.items():
        med = Medication(
            patient_id=maria_id,
            name=name,
            start_date=start.date(),
            timing=timing,
            home_time_zone=zone,
            created_by_user_id=by_user_id,
        )
        session.add(med)
        session.flush()
        step = 7 if name == "Alendronate" else 1
        for day in range(0, 365, step):
            for i, hhmm in enumerate(times):
                hour, minute = map(int, hhmm.split(":"))
                at = (start + timedelta(days=day)).replace(hour=hour, minute=minute)
                rows.append(
                    {
                        "patient_id": maria_id,
                        "medication_id": med.id,
                        "client_id": f"bench-{med.id}-{day}-{i}",
                        "status": "taken",
                        "slot_key": f"{at:%Y-%m-%dT%H:%M}",
                        "scheduled_at": at,
                        "taken_at": at + timedelta(minutes=4),
                        "logged_by_user_id": by_user_id,
                        "logged_at": at + timedelta(minutes=4),
                        "corrections": [],
                    }
                )
    session.commit()
    insert_many(db.session().connection(), DoseLog, rows)
    db.session.commit()
    return len(rows)


def timed(
    client: Any, paths: dict[str, tuple[str, str]], tokens: dict[str, str], n: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(n + 3):
        for name, (path, who) in paths.items():
            t0 = time.perf_counter()
            r = client.get(path, headers={"Authorization": f"Bearer {tokens[who]}"})
            elapsed = time.perf_counter() - t0
            if r.status_code != 200:
                raise SystemExit(f"{name}: {r.status_code} {r.get_data(as_text=True)[:300]}")
            if i >= 3:  # warm-up
                samples[name].append(elapsed * 1000)
    return samples


def shared_files(given: str | None) -> list[Path]:
    base = Path(
        given or os.environ.get("CARECOMPANION_SHARED_DATA") or ROOT.parent / "shared" / "data"
    )
    folder = base / "fhir"
    found: list[Path] = []
    for sub in ("synthea", "careteam", "hl7-r4-examples"):
        found += sorted((folder / sub).glob("*.json"))
    return found


def import_all(files: list[Path], by: User) -> tuple[float, dict[str, int]]:
    totals: dict[str, int] = {}
    t0 = time.perf_counter()
    for path in files:
        reports: list[Report] = import_as_operator(db.session(), json.loads(path.read_text()), by)
        db.session.commit()
        for report in reports:
            for status, count in report.counts.items():
                totals[status] = totals.get(status, 0) + count
    return time.perf_counter() - t0, totals


def _row(name: str, values: list[float], baseline: float | None) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    p50 = statistics.median(values)
    extra = f"   x{p50 / baseline:.1f} of the baseline" if baseline else ""
    return f"{name:<52} {p50:>8.1f} {p95:>8.1f} {max(values):>8.1f}{extra}"


def _iter_engine(args: argparse.Namespace) -> Iterator[Any]:
    with fresh_engine(args.db, args.pg_url) as engine:
        yield engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=30, help="timed requests per endpoint")
    parser.add_argument("--shared", help="the shared/data folder (default: ../shared/data)")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    args = parser.parse_args(argv)

    for engine in _iter_engine(args):
        upgrade(engine)
        db.init_engine(engine)
        loaded = load_fixtures(db.session())
        db.session.commit()
        maria = loaded["patients"]["maria"]
        doses = seed_year(maria.id, loaded["users"]["maria"].id, maria.time_zone)
        settings = Settings(env="test", firebase_auth_emulator_host=EMULATOR, log_level="WARNING")
        app = create_app(settings, ENGINE=engine, TESTING=True)
        tokens = {
            who: emulator_token(settings, f"demo-{who}", None, who, timedelta(hours=2))
            for who in ("maria", "ana")
        }
        pid = maria.id
        paths = {
            "GET /me/today (JSON baseline)": ("/me/today", "maria"),
            "GET /patients/{id}/medications (JSON)": (f"/patients/{pid}/medications", "maria"),
            "GET /patients/{id}/doses?page_size=100 (JSON)": (
                f"/patients/{pid}/doses?page_size=100",
                "maria",
            ),
            "GET /fhir/Patient/{id}/$everything as María": (
                f"/fhir/Patient/{pid}/$everything",
                "maria",
            ),
            "GET /fhir/Patient/{id}/$everything as Ana": (
                f"/fhir/Patient/{pid}/$everything",
                "ana",
            ),
        }
        with app.app_context():
            client = app.test_client()
            bundle = json.loads(
                client.get(
                    paths["GET /fhir/Patient/{id}/$everything as María"][0],
                    headers={"Authorization": f"Bearer {tokens['maria']}"},
                ).get_data(as_text=True)
            )
            samples = timed(client, paths, tokens, args.n)
            files = shared_files(args.shared)
            by = db.session.scalar(select(User).where(User.firebase_uid == "demo-david"))
            assert by is not None
            first = again = None
            if files:
                first = import_all(files, by)
                again = import_all(files, by)
        os.environ.pop(EMULATOR_HOST_VAR, None)

    print(
        f"\nFHIR export and import -- {args.db}, {os.cpu_count()} CPUs, "
        f"{args.n} timed requests each"
    )
    print(
        f"María: 5 medicines, {doses:,} dose logs over a year; "
        f"her bundle has {len(bundle['entry']):,} resources"
    )
    header = f"{'request':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    names = list(paths)
    baseline = statistics.median(samples[names[0]])
    print(_row(names[0], samples[names[0]], None))
    for name in names[1:]:
        print(_row(name, samples[name], baseline))
    if first is None or again is None:
        print("import: skipped, the shared FHIR material is not here (see --shared)")
        return 0
    print(f"import of {len(files)} shared files: {first[0]:.1f} s {first[1]}")
    print(f"re-import of the same files:     {again[0]:.1f} s {again[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
