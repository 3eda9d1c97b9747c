"""Running it as a service: readiness, Prometheus metrics, request logs, a quiet worker.

What an operator relies on: ``/readyz`` keeps a new version out of the load balancer until
its schema is migrated; ``/metrics`` counts requests by route template (never an id) and is
refused to anyone outside the allow-list; every request is one log line whose request id is
the one in the error body and the access log; the worker's own metrics say what a dispatch
batch did against (the local) FCM; an idle worker logs nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db, metrics
from backend.app import create_app
from backend.config import ConfigError, Settings
from backend.db import make_engine
from backend.logs import configure_logging
from backend.migrate import upgrade
from backend.models import AccessLogEntry
from backend.readiness import code_heads
from notifications import enqueue, register_device
from notifications.channels.fcm import FcmChannel
from notifications.worker import build_scheduler
from tests.conftest import START, Api, Clock, World, assert_error, make_settings
from tests.fcmserver import FcmServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
FIRST_REVISION = "69dcc60d9bd5"  # the initial schema


def parse(exposition: str) -> Samples:
    """Every sample of a Prometheus text exposition, parsed by prometheus-client's parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- /readyz ------------------------------------------------------------------------------


def test_readyz_is_503_until_the_schema_is_at_head_while_healthz_stays_200(
    empty_engine: Engine,
) -> None:
    app = create_app(make_settings(), ENGINE=empty_engine, TESTING=True)
    client = app.test_client()

    assert client.get("/healthz").status_code == 200  # alive, so not to be restarted
    body = assert_error(client.get("/readyz"), 503)
    assert "no schema yet" in body["message"] and "db upgrade" in body["message"]

    upgrade(empty_engine, FIRST_REVISION)  # an old version's schema
    response = client.get("/readyz")
    body = assert_error(response, 503)
    assert f"at {FIRST_REVISION}" in body["message"] and code_heads()[0] in body["message"]
    assert response.headers["Retry-After"] == "5"

    upgrade(empty_engine)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "database": empty_engine.dialect.name,
        "revision": ",".join(code_heads()),
    }


def test_readyz_says_when_the_database_cannot_be_reached(engine: Engine) -> None:
    nowhere = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        app = create_app(make_settings(), ENGINE=nowhere, TESTING=True)
        body = assert_error(app.test_client().get("/readyz"), 503)
        assert body["message"] == "Not ready: the database is unreachable."
    finally:
        nowhere.dispose()
        db.init_engine(engine)


# -- /metrics -----------------------------------------------------------------------------


def scrape(api: Api, **kw: Any) -> Samples:
    response = api.get("/metrics", **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def test_metrics_count_requests_by_route_template_and_never_by_id(api: Api, world: World) -> None:
    before = scrape(api)
    assert api.get(f"/patients/{world.maria}", as_="ana").status_code == 200
    assert api.get(f"/patients/{world.chen}", as_="sam").status_code == 404
    assert api.get("/no/such/path/12345").status_code == 404
    after = scrape(api)

    route = "/patients/<int:patient_id>"
    for status in ("200", "404"):
        key = {"route": route, "method": "GET", "status": status}
        delta = value(after, "carecompanion_http_requests_total", **key) - value(
            before, "carecompanion_http_requests_total", **key
        )
        assert delta == 1, status
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "carecompanion_http_requests_total", **unmatched) > value(
        before, "carecompanion_http_requests_total", **unmatched
    )
    count = "carecompanion_http_request_duration_seconds_count"
    assert (
        value(after, count, route=route, method="GET")
        - value(before, count, route=route, method="GET")
        == 2
    )

    templates = {rule.rule for rule in api.app.url_map.iter_rules()} | {"unmatched"}
    people = {str(world.maria), str(world.chen)} | {u.firebase_uid for u in world.users.values()}
    for name, labels in after:
        for label, label_value in labels:
            # The registry is the process's: other tests' apps (with routes of their own, such
            # as a /boom) counted too; this app's requests are the samples that moved.
            if label == "route" and after[(name, labels)] != before.get((name, labels)):
                assert label_value in templates
            assert label_value not in people and "12345" not in label_value, (name, labels)


def test_metrics_are_our_404_outside_the_allow_list_and_through_a_proxy(
    api: Api, engine: Engine
) -> None:
    unknown = assert_error(api.get("/no-such-page"), 404)
    outside = assert_error(api.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}), 404)
    assert outside["message"] == unknown["message"]  # nothing says there is something here
    # A proxy on this host connects from loopback; what it forwards is refused too.
    assert_error(api.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}), 404)

    scrapers = create_app(make_settings(metrics_allow=("10.0.0.0/8",)), ENGINE=engine)
    client = scrapers.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert_error(client.get("/metrics"), 404)  # loopback is no longer on the list


def test_the_metrics_allow_list_is_a_strict_setting() -> None:
    settings = Settings.from_env({"METRICS_ALLOW": "10.0.0.0/8, ::1"})
    assert settings.metrics_allow == ("10.0.0.0/8", "::1/128")
    assert Settings.from_env({}).metrics_allow == ("127.0.0.0/8", "::1/128")
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        Settings.from_env({"METRICS_ALLOW": "everyone"})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
    assert Settings.from_env({}).log_format == "text"
    production = {"CARECOMPANION_ENV": "production", "FIREBASE_PROJECT_ID": "care-prod-1"}
    assert Settings.from_env(production).log_format == "json"


# -- request logs -------------------------------------------------------------------------


@pytest.fixture
def json_api(world: World, engine: Engine) -> Iterator[Api]:
    """The app as production logs it: JSON lines at INFO."""
    app = create_app(make_settings(log_format="json", log_level="INFO"), ENGINE=engine)
    yield Api(app.test_client(), app, world)
    configure_logging("WARNING", "text")


def request_lines(err: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "carecompanion.requests"]


def test_each_request_is_one_json_line_with_the_request_id_of_its_error_body_and_access_log(
    json_api: Api, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    refused = json_api.get(f"/patients/{world.chen}", as_="sam")
    body = assert_error(refused, 404)
    seen = json_api.get(f"/patients/{world.maria}", as_="ana")
    assert seen.status_code == 200
    lines = request_lines(capsys.readouterr().err)

    assert len(lines) == 2
    first, second = lines
    assert first["request_id"] == body["request_id"] == refused.headers["X-Request-ID"]
    assert first["user_id"] == world.users["sam"].id
    assert (first["method"], first["route"], first["status"]) == (
        "GET",
        "/patients/<int:patient_id>",
        404,
    )
    assert first["level"] == "INFO" and isinstance(first["duration_ms"], float)
    assert second["request_id"] == seen.headers["X-Request-ID"]
    assert second["user_id"] == world.users["ana"].id
    logged = db.session.scalars(
        select(AccessLogEntry.request_id).where(AccessLogEntry.patient_id == world.maria)
    ).all()
    assert logged == [second["request_id"]]
    for line in lines:  # ids, never names or paths with ids
        flat = json.dumps(line)
        for user in world.users.values():
            assert not user.display_name or user.display_name not in flat
        assert f"/patients/{world.maria}" not in flat


# -- the worker ---------------------------------------------------------------------------


def scrape_worker(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse(response.read().decode())


@pytest.fixture(scope="module")
def worker_port() -> int:
    return metrics.serve_worker_metrics("127.0.0.1:0")


def test_the_worker_counts_a_dispatch_batch_against_fcm(
    world: World,
    engine: Engine,
    fcm: FcmServer,
    channel: FcmChannel,
    clock: Clock,
    worker_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = db.session()
    maria = world.users["maria"].id
    register_device(session, maria, "inst-phone", "maria-phone", "android")
    register_device(session, maria, "inst-old", "maria-old-phone", "android")
    fcm.script("maria-old-phone", "UNREGISTERED")
    for key, due in (("summary:now", START), ("summary:later", START + timedelta(hours=3))):
        enqueue(
            session,
            dedupe_key=key,
            kind="summary",
            user_id=maria,
            patient_id=world.maria,
            due_at=due,
            not_after=due + timedelta(hours=2),
            subject={},
        )
    session.commit()
    clock.advance(seconds=90)  # the worker gets to it 90 s after it was due

    before = scrape_worker(worker_port)
    jobs = {job.id: job.func for job in build_scheduler(engine, channel, owner="w").get_jobs()}
    with caplog.at_level(logging.INFO, logger="notifications.worker"):
        jobs["dispatch"]()
        jobs["outbox"]()
    after = scrape_worker(worker_port)
    # One log line for the run, with its counts as fields.
    (line,) = [r for r in caplog.records if getattr(r, "event", None) == "dispatch"]
    counts = [getattr(line, k) for k in ("claimed", "sent", "pushes_ok", "pushes_failed")]
    assert counts == [1, 1, 1, 1]

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("carecompanion_reminders_claimed_total") == 1
    assert grew("carecompanion_reminders_dispatched_total", outcome="sent") == 1
    assert grew("carecompanion_pushes_total", result="accepted", error_code="") == 1
    assert grew("carecompanion_pushes_total", result="refused", error_code="UNREGISTERED") == 1
    assert grew("carecompanion_devices_deactivated_total") == 1
    lateness = "carecompanion_reminder_lateness_seconds"
    assert grew(f"{lateness}_count", kind="summary") == 1
    assert grew(f"{lateness}_bucket", kind="summary", le="60.0") == 0
    assert grew(f"{lateness}_bucket", kind="summary", le="120.0") == 1
    assert grew("carecompanion_job_duration_seconds_count", job="dispatch") == 1
    assert value(after, "carecompanion_worker_heartbeat_timestamp_seconds") > 0
    assert value(after, "carecompanion_outbox_reminders", state="pending", kind="summary") == 1
    assert value(after, "carecompanion_outbox_due_reminders", kind="summary") == 0
    assert value(after, "carecompanion_outbox_oldest_due_age_seconds") == 0
    people = {str(maria), str(world.maria), "maria-phone", "maria-old-phone"}
    for _name, labels in after:
        assert not people & {v for _, v in labels}


# The process tests below run on a SQLite file of their own: they are about processes and
# their output, not about the database, so they run once, in the SQLite run.
once = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="process-level; runs in the SQLite run"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@once
def test_an_idle_worker_is_quiet(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/idle.sqlite"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    env.update(
        DATABASE_URL=url,
        CARECOMPANION_ENV="development",
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        WORKER_METRICS_BIND=f"127.0.0.1:{port}",
    )
    cmd = [sys.executable, "-c", "from backend.cli import main; main()", "worker"]
    proc = subprocess.Popen(
        [*cmd, "--channel", "console", "--every", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs = 0.0
        deadline = time.monotonic() + 60  # waiting on another process, not on our clock
        while runs < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # sleep-ok: polling the worker process
            try:
                samples = scrape_worker(port)
            except OSError:
                continue  # not listening yet
            runs = value(samples, "carecompanion_job_duration_seconds_count", job="dispatch")
        assert runs >= 10
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    scheduler = [line for line in lines if line["logger"].startswith("apscheduler")]
    # Only what is wrong: on a loaded machine a run may start late ("missed by").
    assert all(line["level"] in ("WARNING", "ERROR") for line in scheduler), scheduler
    assert not [line for line in scheduler if "running instances" in line["message"]]
    # Ten dispatch runs (and the planner and the outbox gauges) and nothing to say about
    # them: started, where the metrics are, the signal, stopped.
    ours = [line for line in lines if line not in scheduler]
    assert [line["message"] for line in ours] == [
        f"metrics on port {port}",
        "worker started (channel console)",
        f"signal {int(signal.SIGTERM)}: finishing the batch in hand",
        "worker stopped",
    ]
    assert "worker stopped" in out


def test_development_logs_are_readable_text(
    world: World, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(log_level="INFO"), ENGINE=engine)
    try:
        capsys.readouterr()
        response = app.test_client().get("/healthz", headers={"X-Request-ID": "req-from-proxy-1"})
        err = capsys.readouterr().err
    finally:
        configure_logging("WARNING", "text")
    assert response.headers["X-Request-ID"] == "req-from-proxy-1"
    (line,) = [line for line in err.splitlines() if "carecompanion.requests" in line]
    assert not line.startswith("{")
    assert "INFO carecompanion.requests: GET /healthz 200 request_id=req-from-proxy-1" in line


@once
def test_serve_shares_metrics_across_gunicorn_workers_logs_json_and_writes_no_control_socket(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/serve.sqlite"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FIREBASE_AUTH_EMULATOR_HOST", "XDG_RUNTIME_DIR", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(
        HOME=str(tmp_path),
        DATABASE_URL=url,
        CARECOMPANION_INSTANCE_PATH=str(tmp_path / "instance"),
        FIREBASE_PROJECT_ID="care-companion-test",  # production: JSON logs by default
    )
    cmd = [sys.executable, "-c", "from backend.cli import main; main()", "serve"]
    proc = subprocess.Popen(
        [*cmd, "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # waiting on another process, not on our clock
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=5).close()
                break
            except OSError:
                time.sleep(0.2)  # sleep-ok: polling the server process
        for _ in range(20):  # over a fresh connection each: either worker may answer
            urllib.request.urlopen(f"{base}/healthz", timeout=5).close()
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            samples = parse(response.read().decode())
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(samples, "carecompanion_http_requests_total", **healthz) == 20
    assert sorted(p.name for p in (tmp_path / "instance" / "prometheus").iterdir())
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    served = [line for line in lines if line["logger"] == "carecompanion.requests"]
    assert [line["route"] for line in served].count("/healthz") == 20
    assert {line["logger"] for line in lines} >= {"gunicorn.error", "carecompanion.requests"}
    assert not (tmp_path / ".gunicorn").exists()  # gunicorn 25.1+'s default control socket
