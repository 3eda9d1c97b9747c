"""Test wiring: a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set),
the app in test mode with the Firebase auth-emulator, an injected clock, and the personas.

Personas (the same people as the demo fixtures):
  maria  - patient with her own login, Spanish-speaking, diabetes and hypertension
  ana    - Maria's daughter, caregiver by consent (no view_checkins)
  chen   - Mr. Chen, a managed patient with dementia (no login)
  david  - Mr. Chen's son, his managing caregiver
  priya  - nurse coordinator on the team both patients are enrolled on
  omar   - coordinator on another team
  sam    - a stranger who must see nothing
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from backend import db
from backend.app import create_app
from backend.clock import set_clock
from backend.config import Settings
from backend.db import Base, make_engine
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.migrate import upgrade
from backend.models import Patient, User
from notifications.channels.fcm import FcmChannel
from tests.fcmserver import FcmServer, local_fcm_app

EMULATOR = "127.0.0.1:9099"
START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def make_settings(**overrides: Any) -> Settings:
    base = Settings(env="test", firebase_auth_emulator_host=EMULATOR, log_level="WARNING")
    return base.with_overrides(**overrides)


@dataclass
class Clock:
    """The injected clock: tests move time with advance(), never sleep."""

    at: datetime = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def _postgres_engine(url: str) -> tuple[Engine, str]:
    schema = f"cc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    # A test needs no commit to survive a power cut: not waiting for the WAL flush on each
    # commit cut the PostgreSQL pass by a large share (the suite commits ~100,000 times).
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    engine = make_engine(url, connect_args={"options": options})
    return engine, schema


def _no_sync(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA synchronous=OFF")


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        # Each run gets its own schema so runs can repeat and never see each other's rows.
        engine, schema = _postgres_engine(pg_url)
        upgrade(engine)
        yield engine
        engine.dispose()
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "test.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        # As on PostgreSQL: a test's commits need not reach the disk (no fsync per commit).
        event.listen(engine, "connect", _no_sync)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def empty_engine(tmp_path: Path, engine: Engine) -> Iterator[Engine]:
    """A reachable database with nothing in it (a fresh SQLite file or PostgreSQL schema),
    for tests that migrate one themselves."""
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        fresh, schema = _postgres_engine(pg_url)
    else:
        fresh = make_engine(f"sqlite:///{tmp_path}/empty.sqlite")
    yield fresh
    fresh.dispose()
    db.init_engine(engine)  # an app made on ``fresh`` bound the session to it
    if pg_url:
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def app(engine: Engine) -> Iterator[Flask]:
    application = create_app(make_settings(), ENGINE=engine, TESTING=True)
    yield application
    os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)


_RESTART_SEQUENCES = """
SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname = current_schema()
"""


def _wipe(engine: Engine) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    # A connection a previous test left to the pool's garbage collector (a thread or child
    # process) can still hold a lock for a moment: retry a deadlock instead of failing setup.
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                # DELETE, not TRUNCATE: the tables hold a few rows, and TRUNCATE of 40 tables
                # (new files for each) took 150-800 ms per test against 15 ms for this.
                for name in reversed(tables):
                    conn.execute(text(f"DELETE FROM {name}"))
                if engine.dialect.name == "postgresql":
                    # Ids start at 1 again, as SQLite's do once a table is empty.
                    conn.execute(text(_RESTART_SEQUENCES))
            return
        except OperationalError:
            if attempt == 2:
                raise


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    set_clock(c)
    yield c
    set_clock(None)


@pytest.fixture
def ctx(app: Flask, engine: Engine, clock: Clock) -> Iterator[Flask]:
    """A clean database and an app context for one test."""
    db.init_engine(engine)
    _wipe(engine)
    with app.app_context():
        yield app
    db.session.remove()


@dataclass
class World:
    """The personas, loaded from fixtures/demo.json."""

    users: dict[str, User]
    patients: dict[str, Patient]
    teams: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def uid(self, persona: str) -> str:
        return self.users[persona].firebase_uid

    @property
    def maria(self) -> int:
        return self.patients["maria"].id

    @property
    def chen(self) -> int:
        return self.patients["chen"].id


@pytest.fixture
def world(ctx: Flask) -> World:
    loaded = load_fixtures(db.session(), care_data=False)
    db.session.commit()
    return World(loaded["users"], loaded["patients"], loaded["teams"])


class Api:
    """The test client, signed in as a persona: ``api.get("/me", as_="maria")``."""

    def __init__(self, client: FlaskClient, app: Flask, world: World | None) -> None:
        self.client = client
        self.app = app
        self.world = world

    def token(self, who: str) -> str:
        settings = self.app.config["SETTINGS"]
        if self.world is not None and who in self.world.users:
            user = self.world.users[who]
            return emulator_token(settings, user.firebase_uid, user.email, user.display_name)
        return emulator_token(settings, who, f"{who}@example.org", who.title())

    def request(self, method: str, path: str, as_: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.token(as_)}"
        return self.client.open(path, method=method, headers=headers, **kw)

    def get(self, path: str, as_: str | None = None, **kw: Any) -> Any:
        return self.request("GET", path, as_, **kw)

    def post(self, path: str, as_: str | None = None, **kw: Any) -> Any:
        return self.request("POST", path, as_, **kw)

    def put(self, path: str, as_: str | None = None, **kw: Any) -> Any:
        return self.request("PUT", path, as_, **kw)

    def patch(self, path: str, as_: str | None = None, **kw: Any) -> Any:
        return self.request("PATCH", path, as_, **kw)

    def delete(self, path: str, as_: str | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, as_, **kw)


@pytest.fixture
def api(ctx: Flask, world: World) -> Api:
    return Api(ctx.test_client(), ctx, world)


@pytest.fixture(scope="session")
def fcm_server() -> Iterator[FcmServer]:
    """The local FCM-v1 server; the real firebase-admin client talks to it."""
    server = FcmServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def channel(fcm_server: FcmServer) -> FcmChannel:
    return FcmChannel(local_fcm_app(fcm_server.fcm_url_template))


@pytest.fixture
def fcm(fcm_server: FcmServer) -> FcmServer:
    """The server with what it recorded and scripted cleared for this test."""
    fcm_server.reset()
    return fcm_server


def assert_error(response: Any, code: int) -> dict[str, Any]:
    """Every error has our one shape."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:200]
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass (TEST_DATABASE_URL) leaves out the tests that touch no database:
    the SQLite pass runs them, and they cannot differ by database (a slow day's PostgreSQL
    pass ran past CI's 20-minute step limit repeating them)."""
    if not os.environ.get("TEST_DATABASE_URL"):
        return
    kept = [item for item in items if "engine" in getattr(item, "fixturenames", ())]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
