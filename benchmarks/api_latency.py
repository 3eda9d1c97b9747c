"""API latency on a realistically sized database, measured in-process with Flask's test client.

    python benchmarks/api_latency.py [--db sqlite|postgresql] [--n 500]

What it does, in one run, and then stops by itself:

1. creates a fresh database -- a SQLite file in a temporary folder, or a throwaway schema in
   the PostgreSQL at 127.0.0.1:5432/test (dropped afterwards, as tests/conftest.py does) --
   and migrates it with the app's own Alembic migrations;
2. loads the demo fixtures plus a synthetic bulk: 2,000 patients with their own logins, each
   with a caregiver grant and an enrollment on one care team whose coordinator therefore has
   a 2,000-patient panel, and ~50,000 access-log rows (5,000 of them María's);
3. times every endpoint round-robin (so drift hits all of them alike) after a warm-up, and
   prints p50/p95/p99 and requests/s per endpoint plus the overhead over ``GET /healthz``.

Sign-in uses auth-emulator tokens (no signature check) for the main table; one extra row
measures the production path -- real RS256 tokens checked against certificates served on
127.0.0.1 (cached by firebase-admin as it caches Google's). Nothing talks beyond 127.0.0.1.

Numbers are for one sequential client with no HTTP server in between: they show what our
code and the database cost per request, not what gunicorn serves under concurrency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import db
from backend.app import create_app
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.db import make_engine
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.migrate import upgrade
from backend.models import AccessLogEntry, CaregiverGrant, CareTeamMember, Enrollment
from backend.services.careteams import add_team
from benchmarks._seed import PG_URL, add_patients, add_users, insert_many, throwaway_schema

EMULATOR = "127.0.0.1:9099"  # never contacted: emulator-mode verification is local
PERMISSIONS = ["log_doses", "view_appointments", "view_care_plan", "view_medications"]
ACTIONS = ["view_patient", "view_medications", "view_care_plan", "view_appointments"]


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def fresh_engine(kind: str, pg_url: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
            try:
                yield engine
            finally:
                engine.dispose()
        return
    with throwaway_schema(pg_url) as (engine, _schema):
        yield engine


@dataclass
class Bulk:
    team_id: int
    coordinator_uid: str
    caregivers: list[tuple[str, int]]  # (caregiver uid, patient id)
    maria_patient_id: int


def load_bulk(engine: Engine, patients: int, log_rows: int) -> Bulk:
    rng = random.Random(20261125)
    now = datetime.now(UTC)
    db.init_engine(engine)
    session = db.session()
    loaded = load_fixtures(session)
    team = add_team(session, "Benchmark Health", "Bench Panel")
    session.commit()
    maria_patient_id = loaded["patients"]["maria"].id
    ana_user_id = loaded["users"]["ana"].id
    db.session.remove()

    with engine.begin() as conn:
        coordinator_id = add_users(conn, "bench-coordinator", 1, now)[0]
        patient_users = add_users(conn, "bench-patient", patients, now)
        caregiver_users = add_users(conn, "bench-caregiver", patients, now)
        conn.execute(
            insert(CareTeamMember),
            [{"care_team_id": team.id, "user_id": coordinator_id, "role": "care_coordinator"}],
        )
        names = [f"Patient {i:05d} {rng.choice('ABCDEFGH')}" for i in range(patients)]
        patient_ids = add_patients(conn, patient_users, names, now)
        conn.execute(
            insert(CaregiverGrant),
            [
                {
                    "patient_id": pid,
                    "caregiver_user_id": cid,
                    "relationship": rng.choice(["daughter", "son", "spouse", "friend"]),
                    "permissions": PERMISSIONS,
                    "is_managing": False,
                    "granted_by_user_id": puid,
                    "created_at": now,
                }
                for pid, cid, puid in zip(patient_ids, caregiver_users, patient_users, strict=True)
            ],
        )
        conn.execute(
            insert(Enrollment),
            [
                {"care_team_id": team.id, "patient_id": pid, "enrolled_at": now}
                for pid in patient_ids
            ],
        )
        maria_share = log_rows // 10
        log = [_log_row(rng, now, maria_patient_id, ana_user_id) for _ in range(maria_share)]
        for _ in range(log_rows - maria_share):
            k = rng.randrange(patients)
            log.append(_log_row(rng, now, patient_ids[k], caregiver_users[k]))
        insert_many(conn, AccessLogEntry, log)
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))  # what autovacuum does shortly after a bulk load

    caregivers = [(f"bench-caregiver-{i:05d}", pid) for i, pid in enumerate(patient_ids)]
    return Bulk(team.id, "bench-coordinator-00000", caregivers, maria_patient_id)


def _log_row(rng: random.Random, now: datetime, patient_id: int, actor: int) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "actor_user_id": actor,
        "actor_role": "daughter",
        "action": rng.choice(ACTIONS),
        "method": "GET",
        "path": f"/patients/{patient_id}",
        "status": 200,
        "request_id": uuid.uuid4().hex,
        "at": now - timedelta(seconds=rng.randrange(90 * 86400)),
    }


# --------------------------------------------------------------------------- measuring


@dataclass
class Endpoint:
    name: str
    request: Callable[[int], tuple[str, dict[str, str]]]  # i -> (path, headers)
    samples: list[float]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def measure_round_robin(client: Any, endpoints: list[Endpoint], n: int, warmup: int) -> None:
    for i in range(warmup + n):
        for ep in endpoints:
            path, headers = ep.request(i)
            t0 = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise SystemExit(
                    f"{ep.name}: {response.status_code} {response.get_data(as_text=True)[:300]}"
                )
            if i >= warmup:
                ep.samples.append(elapsed)


def emulator_endpoints(settings: Settings, bulk: Bulk) -> list[Endpoint]:
    def tok(uid: str) -> str:
        return emulator_token(settings, uid, f"{uid}@example.org", uid, timedelta(hours=6))

    caregiver_tokens = [(tok(uid), pid) for uid, pid in bulk.caregivers[:200]]
    coordinator = _bearer(tok(bulk.coordinator_uid))
    maria = _bearer(tok("demo-maria"))
    last_page = -(-len(bulk.caregivers) // 50)
    panel = f"/care-teams/{bulk.team_id}/patients?page_size=50"

    def caregiver(i: int) -> tuple[str, dict[str, str]]:
        token, pid = caregiver_tokens[i % len(caregiver_tokens)]
        return f"/patients/{pid}", _bearer(token)

    def me(i: int) -> tuple[str, dict[str, str]]:
        return "/me", _bearer(caregiver_tokens[i % len(caregiver_tokens)][0])

    return [
        Endpoint("GET /healthz (baseline, no auth)", lambda i: ("/healthz", {}), []),
        Endpoint("GET /me", me, []),
        Endpoint("GET /patients/{id} as caregiver", caregiver, []),
        Endpoint("GET team panel, page 1 of 2,000", lambda i: (panel, coordinator), []),
        Endpoint(
            f"GET team panel, page {last_page} (last)",
            lambda i: (f"{panel}&page={last_page}", coordinator),
            [],
        ),
        Endpoint(
            "GET /patients/{id}/access-log",
            lambda i: (f"/patients/{bulk.maria_patient_id}/access-log", maria),
            [],
        ),
    ]


# --------------------------------------------------------------------------- production auth


class _CertServer:
    """Serves one X.509 signing certificate the way Google's metadata endpoint does."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-signer")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=2))
            .sign(key, hashes.SHA256())
        )
        self.kid = uuid.uuid4().hex
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        body = json.dumps({self.kid: cert.public_bytes(serialization.Encoding.PEM).decode()})
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                payload = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, project: str, uid: str) -> str:
        from google.auth import crypt, jwt

        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        issued = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{project}",
            "aud": project,
            "sub": uid,
            "user_id": uid,
            "iat": issued,
            "auth_time": issued,
            "exp": issued + 3600,
            "email": f"{uid}@example.org",
        }
        return jwt.encode(signer, claims).decode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def production_auth_endpoint(engine: Engine, bulk: Bulk, n: int, warmup: int) -> Endpoint:
    from firebase_admin import _token_gen

    certs = _CertServer()
    _token_gen.ID_TOKEN_CERT_URI = certs.url  # the one override; read when the verifier is built
    os.environ.pop(EMULATOR_HOST_VAR, None)
    settings = Settings(
        env="development", firebase_project_id="bench-carecompanion", log_level="WARNING"
    )
    try:
        app = create_app(settings, ENGINE=engine, TESTING=True)
        tokens = [
            certs.token(settings.firebase_project_id, uid) for uid, _ in bulk.caregivers[:200]
        ]
        endpoint = Endpoint(
            "GET /me, RS256 token (production path)",
            lambda i: ("/me", _bearer(tokens[i % len(tokens)])),
            [],
        )
        measure_round_robin(app.test_client(), [endpoint], n, warmup)
        if certs.fetches > 2:
            print(f"warning: certificates fetched {certs.fetches} times (cache not used)")
        return endpoint
    finally:
        certs.close()


# --------------------------------------------------------------------------- report


def _row(ep: Endpoint, baseline_p50: float | None) -> str:
    ms = sorted(s * 1000 for s in ep.samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    p50, p95, p99 = q[49], q[94], q[98]
    rps = len(ms) / (sum(ms) / 1000)
    over = (
        "" if baseline_p50 is None else f"{p50 - baseline_p50:+8.2f} ms {p50 / baseline_p50:5.1f}x"
    )
    return f"{ep.name:<42} {p50:8.2f} {p95:8.2f} {p99:8.2f} {rps:9.0f}   {over}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=500, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--log-rows", type=int, default=50_000)
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (must be local)")
    args = parser.parse_args(argv)
    if args.n < 20:
        parser.error("--n must be at least 20 for a p99")

    with fresh_engine(args.db, args.pg_url) as engine:
        upgrade(engine)
        t0 = time.perf_counter()
        bulk = load_bulk(engine, args.patients, args.log_rows)
        load_s = time.perf_counter() - t0

        settings = Settings(env="test", firebase_auth_emulator_host=EMULATOR, log_level="WARNING")
        app = create_app(settings, ENGINE=engine, TESTING=True)
        endpoints = emulator_endpoints(settings, bulk)
        t0 = time.perf_counter()
        measure_round_robin(app.test_client(), endpoints, args.n, args.warmup)
        endpoints.append(production_auth_endpoint(engine, bulk, args.n, args.warmup))
        measure_s = time.perf_counter() - t0
        with engine.connect() as conn:
            log_count = conn.scalar(select(func.count()).select_from(AccessLogEntry))
            server = conn.scalar(
                text("SELECT sqlite_version()" if args.db == "sqlite" else "SHOW server_version")
            )
        os.environ.pop(EMULATOR_HOST_VAR, None)

    print(
        f"\ncare-companion API latency -- {args.db} {server}, Python {platform.python_version()}"
        f" (sqlite3 lib {sqlite3.sqlite_version}), {os.cpu_count()} CPUs"
    )
    print(
        f"data: {args.patients:,} patients + caregivers on one panel, access log "
        f"{log_count:,} rows at the end; bulk load {load_s:.1f} s; "
        f"{args.n} timed requests per endpoint after {args.warmup} warm-up, "
        f"round-robin; measuring took {measure_s:.1f} s"
    )
    columns = ("p50 ms", "p95 ms", "p99 ms")
    header = f"{'endpoint':<42} {' '.join(f'{c:>8}' for c in columns)} {'req/s':>9}"
    header += "   p50 over baseline"
    print(header)
    print("-" * len(header))
    baseline = statistics.median(s * 1000 for s in endpoints[0].samples)
    print(_row(endpoints[0], None))
    for ep in endpoints[1:]:
        print(_row(ep, baseline))
    print("(req/s: one sequential in-process client, i.e. 1000 / mean latency)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
