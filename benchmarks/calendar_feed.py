"""The calendar feed's cost per fetch, beside the JSON API's own figures in the same run.

    python benchmarks/calendar_feed.py [--db sqlite|postgresql] [--n 200]

One run, then it stops: a fresh database (a SQLite file, or a throwaway schema in the local
PostgreSQL), migrated; one caregiver with grants on 5 patients, each with 42 appointments in
the feed's window (30 days back to 180 ahead, one every 5 days, a few cancelled) and 5
medicines taken 3 times a day. Then, round-robin after a warm-up, in-process (Flask's test
client, no HTTP server): ``GET /healthz`` (the baseline), ``GET /me/today`` for the same
caregiver (the JSON API's figure for the same people), the feed without and with dose
times, and the feed answered 304 to its ETag. Prints p50/p95/p99 and the overhead over
the baseline; the sizes of the two feeds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import db
from backend.app import create_app
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.devtokens import emulator_token
from backend.migrate import upgrade
from backend.models import Appointment, CaregiverGrant, Medication, Patient, User
from backend.services import calendar_feeds
from benchmarks._seed import PG_URL
from benchmarks.api_latency import EMULATOR, Endpoint, _row, fresh_engine, measure_round_robin

PATIENTS = 5
MEDICINES = 5
TID = {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
PERMISSIONS = ["view_appointments", "view_medications", "view_care_plan"]


def seed() -> tuple[User, str, str]:
    """The caregiver and the secrets of her two feeds (doses off: her own; doses on: a
    second login with the same grants, so both feeds exist at once)."""
    s = db.session()
    at = datetime.now(UTC)
    carers = [User(firebase_uid=f"carer-{k}", display_name=f"Carer {k}") for k in range(2)]
    s.add_all(carers)
    s.flush()
    for i in range(PATIENTS):
        owner = User(firebase_uid=f"patient-{i}", display_name=f"Patient {i}")
        s.add(owner)
        s.flush()
        patient = Patient(user_id=owner.id, created_by_user_id=owner.id, display_name=f"P {i}")
        s.add(patient)
        s.flush()
        for carer in carers:
            s.add(
                CaregiverGrant(
                    patient_id=patient.id,
                    caregiver_user_id=carer.id,
                    relationship="daughter",
                    permissions=PERMISSIONS,
                    granted_by_user_id=owner.id,
                )
            )
        for k in range(42):
            start = at - timedelta(days=29) + timedelta(days=5 * k, hours=i)
            s.add(
                Appointment(
                    patient_id=patient.id,
                    title=f"Visit {k}",
                    type="in_person",
                    location="Clinic",
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                    time_zone="America/New_York",
                    status="cancelled" if k % 10 == 9 else "booked",
                    created_by_user_id=owner.id,
                    updated_by_user_id=owner.id,
                )
            )
        for m in range(MEDICINES):
            s.add(
                Medication(
                    patient_id=patient.id,
                    name=f"Medicine {m}",
                    start_date=(at - timedelta(days=60)).date(),
                    timing=TID,
                    home_time_zone="America/New_York",
                    created_by_user_id=owner.id,
                )
            )
    _, plain = calendar_feeds.create(s, carers[0], {})
    _, doses = calendar_feeds.create(s, carers[1], {"include_doses": True})
    s.commit()
    return carers[0], plain, doses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    args = parser.parse_args(argv)
    if args.n < 20:
        parser.error("--n must be at least 20 for a p99")
    with fresh_engine(args.db, args.pg_url) as engine:
        upgrade(engine)
        settings = Settings(env="test", firebase_auth_emulator_host=EMULATOR, log_level="WARNING")
        app = create_app(settings, ENGINE=engine, TESTING=True)
        client = app.test_client()
        with app.app_context():
            carer, plain, doses = seed()
            token = emulator_token(settings, carer.firebase_uid, None, carer.display_name)
        sizes = {
            name: client.get(f"/calendar/{secret}.ics")
            for name, secret in (("plain", plain), ("doses", doses))
        }
        etag = sizes["plain"].headers["ETag"]
        endpoints = [
            Endpoint("GET /healthz", lambda i: ("/healthz", {}), []),
            Endpoint(
                "GET /me/today (5 patients)",
                lambda i: ("/me/today", {"Authorization": f"Bearer {token}"}),
                [],
            ),
            Endpoint("GET feed.ics, appointments", lambda i: (f"/calendar/{plain}.ics", {}), []),
            Endpoint("GET feed.ics, + dose times", lambda i: (f"/calendar/{doses}.ics", {}), []),
        ]
        measure_round_robin(client, endpoints, args.n, args.warmup)
        not_modified = Endpoint("GET feed.ics, If-None-Match (304)", lambda i: ("", {}), [])
        for i in range(args.warmup + args.n):
            t0 = time.perf_counter()
            r = client.get(f"/calendar/{plain}.ics", headers={"If-None-Match": etag})
            elapsed = time.perf_counter() - t0
            if r.status_code != 304:
                raise SystemExit(f"expected 304, got {r.status_code}")
            if i >= args.warmup:
                not_modified.samples.append(elapsed)
        endpoints.append(not_modified)
        os.environ.pop(EMULATOR_HOST_VAR, None)

    print(
        f"\ncalendar feed -- {args.db}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    for name, r in sizes.items():
        count = r.data.count(b"BEGIN:VEVENT")
        print(f"feed {name}: {count} events, {len(r.data) / 1024:.0f} KiB")
    header = f"{'endpoint':<42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>9}"
    print(header + "   p50 over baseline")
    print("-" * (len(header) + 21))
    baseline = statistics.median(s * 1000 for s in endpoints[0].samples)
    print(_row(endpoints[0], None))
    for ep in endpoints[1:]:
        print(_row(ep, baseline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
