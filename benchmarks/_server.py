"""The processes a benchmark starts, talks to and watches, all on 127.0.0.1.

- :func:`prepare_run`: what every wrk benchmark starts with (SIGTERM cleans up like Ctrl-C,
  wrk installed, the settings tokens are made with); :func:`workspace`: a migrated
  throwaway schema and a temporary folder; :func:`run_main` runs ``main()`` and turns Ctrl-C
  into exit status 130 once everything is stopped;
- :func:`service`: a command in its own session, yielded once it is ready and stopped in
  order (SIGTERM, then SIGKILL of its own process group); :func:`gunicorn` is
  ``carecompanion serve`` through it; :class:`LocalFcm` is the test suite's FCM-v1 server in a
  process of its own, which counts every message it accepted by notification tag;
- :func:`http`: one request, signed in or not, an error status being an answer;
- from ``/proc`` (Linux): a process's children, resident memory and CPU time, and
  :class:`CpuProbe`, the CPU that gunicorn and its PostgreSQL sessions spent per request.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import text
from sqlalchemy.engine import Engine

from backend.config import EMULATOR_HOST_VAR, Settings
from backend.migrate import upgrade
from benchmarks._seed import throwaway_schema
from benchmarks._tools import require_wrk
from tests.fcmserver import FcmServer

EMULATOR = "127.0.0.1:9099"  # never contacted: emulator-mode verification is local
REPO = Path(__file__).resolve().parent.parent
APP_NAME = "cc-bench-gunicorn"  # the gunicorn workers' PostgreSQL sessions, for CpuProbe
START_LIMIT_S = 60  # a process not ready by then has failed; its log's tail says why


# -- a run ---------------------------------------------------------------------------------


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prepare_run() -> tuple[str, Settings]:
    """What every wrk benchmark starts with: a polite kill (SIGTERM) cleans up like Ctrl-C
    (processes stopped, schema dropped); wrk's path; the settings tokens are made with."""
    signal.signal(signal.SIGTERM, _interrupted)
    wrk = require_wrk()
    settings = Settings(
        env="development", firebase_auth_emulator_host=EMULATOR, log_level="WARNING"
    )
    os.environ.pop(EMULATOR_HOST_VAR, None)
    return wrk, settings


@contextlib.contextmanager
def workspace(pg_url: str, name: str) -> Iterator[tuple[Engine, str, Path]]:
    """A throwaway PostgreSQL schema at the migrations' head (engine, schema name) and a
    temporary folder for the run's scripts and logs; both gone on the way out."""
    with (
        throwaway_schema(pg_url, prefix=f"cc_{name}") as (engine, schema),
        tempfile.TemporaryDirectory(prefix=f"cc-{name}-") as tmp,
    ):
        upgrade(engine)
        yield engine, schema, Path(tmp)


def run_main(main: Callable[[], int], stopped: str) -> NoReturn:
    """Exit with ``main()``'s status; on Ctrl-C, once its context managers have cleaned up,
    say what was ``stopped`` and exit 130."""
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print(f"interrupted: {stopped}", file=sys.stderr)
        raise SystemExit(130) from None


# -- talking to a server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def http(url: str, token: str | None = None, *, body: Any = None, timeout: float = 60) -> Reply:
    """GET ``url``, or POST ``body`` as JSON when given; with ``token`` as the bearer token.
    A 4xx or 5xx is an answer, not an exception; no answer at all raises OSError."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


# -- processes we start ----------------------------------------------------------------------


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def service(
    name: str,
    command: list[str],
    log_path: Path,
    *,
    env: dict[str, str],
    ready: Callable[[], bool],
    stop_timeout: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` run from the repository with its output in ``log_path``; yielded once
    ``ready()`` is true (an OSError counts as not yet). On the way out SIGTERM (graceful: it
    finishes what it has in hand), then after ``stop_timeout`` s SIGKILL to its group."""
    with log_path.open("wb") as log:
        # Its own session: a Ctrl-C reaches only us, and we stop it in order (below).
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + START_LIMIT_S
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with {proc.returncode}:\n{tail(log_path)}")
                with contextlib.suppress(OSError):
                    if ready():
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"{name} was not ready in {START_LIMIT_S} s:\n{tail(log_path)}"
                    )
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group we created, nothing else
                    proc.wait(timeout=10)


@dataclass
class Server:
    base: str
    pid: int  # the gunicorn master


@contextlib.contextmanager
def gunicorn(database_url: str, workers: int, log_path: Path) -> Iterator[Server]:
    """``carecompanion serve`` (auth-emulator mode) on a free port; yielded once /healthz
    answers; the master stops its workers on SIGTERM."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"TEST_DATABASE_URL", "FIREBASE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"}
    }
    env.update(
        CARECOMPANION_ENV="development",
        FIREBASE_AUTH_EMULATOR_HOST=EMULATOR,
        # Named, so that CpuProbe finds the workers' sessions in pg_stat_activity.
        DATABASE_URL=f"{database_url}{'&' if '?' in database_url else '?'}"
        f"application_name={APP_NAME}",
        FIREBASE_PROJECT_ID="demo-carecompanion",
    )
    command = [
        sys.executable,
        "-c",
        "from backend.cli import main; main()",
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        return http(f"{base}/healthz", timeout=2).status == 200

    with service("gunicorn", command, log_path, env=env, ready=ready, stop_timeout=20) as proc:
        yield Server(base, proc.pid)


Tags = dict[tuple[str, str], int]  # (notification tag, device token) -> messages accepted


def _serve_fcm(conn: Connection) -> None:
    server = FcmServer(keep_messages=False).start()
    conn.send(server.fcm_url_template)
    conn.recv()  # "stop"
    conn.send(dict(server.tags()))
    server.stop()


class LocalFcm:
    """The local FCM-v1 server (``tests/fcmserver.py``) in its own process, so that it does
    not share the GIL of the client it answers. ``url`` is the ``FCM_URL`` template for
    ``tests.fcmserver.local_fcm_app``; :meth:`stop` returns how many messages it accepted
    per (notification tag, token): the tag is ``reminder-{outbox id}``, so exactly-once
    delivery is every count 1."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._conn, theirs = spawn.Pipe()
        self._process = spawn.Process(target=_serve_fcm, args=(theirs,), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()
        self.pid = self._process.pid
        self._tags: Tags | None = None

    def stop(self) -> Tags:
        if self._tags is None:
            self._conn.send("stop")
            self._tags = self._conn.recv()
            self._process.join(timeout=10)
        return self._tags

    def __enter__(self) -> LocalFcm:
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(EOFError, OSError):  # it may be gone already
            self.stop()


# -- /proc -----------------------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """``/proc/PID/stat`` from the field after the command name ("state") on."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(proc_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float | None:
    """Resident memory in MB; None once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class CpuProbe:
    """CPU time used by the gunicorn master and workers and by their PostgreSQL backends
    (sessions named :data:`APP_NAME`), and by wrk (our finished children). Per request, these
    do not depend on what else the machine is doing, unlike requests/s."""

    def __init__(self, master: int, engine: Engine) -> None:
        self.master = master
        self.engine = engine
        self.enabled = Path("/proc/self/stat").exists()

    def _pids(self) -> dict[str, list[int]]:
        with self.engine.connect() as conn:
            backends = list(
                conn.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": APP_NAME},
                )
            )
        return {"gunicorn": [self.master, *children(self.master)], "postgres": backends}

    def sample(self) -> dict[str, dict[int, float]]:
        if not self.enabled:
            return {}
        out: dict[str, dict[int, float]] = {}
        for kind, pids in self._pids().items():
            out[kind] = {}
            for pid in pids:
                with contextlib.suppress(OSError, IndexError, ValueError):
                    out[kind][pid] = cpu_seconds(pid)
        finished = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["wrk"] = {0: finished.ru_utime + finished.ru_stime}
        return out

    @staticmethod
    def per_request(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], requests: int
    ) -> dict[str, float]:
        """Milliseconds of CPU per request by kind (a process new since ``before`` counts
        from zero)."""
        return {
            kind: 1000
            * sum(t - before.get(kind, {}).get(pid, 0.0) for pid, t in used.items())
            / max(requests, 1)
            for kind, used in after.items()
        }
