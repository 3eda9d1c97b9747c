"""Prometheus metrics: the one table of what the API and the worker count, and how it is read.

Two registries, because they are read in two places: ``API`` is what ``GET /metrics`` of the
API answers, ``WORKER`` what the worker's own endpoint (``WORKER_METRICS_BIND``) answers.

Labels never carry a patient, person, device or reminder id: a request is counted by its
route *template* (``/patients/<int:patient_id>``, never the path it was called with), its
method and status; a push by its result and FCM's error code; a reminder by its kind. Every
label has a small, fixed set of values, so a client cannot grow the series.

Under gunicorn each API process counts in memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode; ``carecompanion serve`` sets it up in the instance
folder, :func:`use_multiprocess_dir`) and ``/metrics`` adds up every process's files, so a
scrape that lands on any worker sees the whole server. Without it (development, tests) the
API answers its own registry.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

API = CollectorRegistry(auto_describe=True)
WORKER = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=WORKER)  # the worker's RSS and CPU (gunicorn's are per process)

# -- the API ------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "carecompanion_http_requests",
    "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=API,
)
HTTP_DURATION = Histogram(
    "carecompanion_http_request_duration_seconds",
    "Time from the request reaching the app to its answer, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=API,
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: a 404 or 405 from routing, whatever the path was

# -- the worker ---------------------------------------------------------------------------

OUTBOX = Gauge(
    "carecompanion_outbox_reminders",
    "Reminders waiting in the outbox (pending or claimed), by state and kind.",
    ["state", "kind"],
    registry=WORKER,
)
OUTBOX_DUE = Gauge(
    "carecompanion_outbox_due_reminders",
    "Pending reminders already due (the backlog), by kind.",
    ["kind"],
    registry=WORKER,
)
OUTBOX_OLDEST_DUE = Gauge(
    "carecompanion_outbox_oldest_due_age_seconds",
    "How long the oldest due pending reminder has waited (0 when none).",
    registry=WORKER,
)
LATENESS = Histogram(
    "carecompanion_reminder_lateness_seconds",
    "From a reminder's due time to FCM accepting its first push, by kind.",
    ["kind"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    registry=WORKER,
)
PUSHES = Counter(
    "carecompanion_pushes",
    "Pushes sent to devices, by result (accepted, refused) and FCM error code ('' if none).",
    ["result", "error_code"],
    registry=WORKER,
)
OUTCOMES = Counter(
    "carecompanion_reminders_dispatched",
    "Claimed reminders by what became of them: sent, retrying, failed, expired, cancelled.",
    ["outcome"],
    registry=WORKER,
)
CLAIMED = Counter(
    "carecompanion_reminders_claimed", "Reminders claimed by this worker.", registry=WORKER
)
LOST_LEASES = Counter(
    "carecompanion_leases_lost",
    "Claimed reminders this worker could no longer write (its lease ran out and was taken).",
    registry=WORKER,
)
REAPED = Counter(
    "carecompanion_leases_reaped",
    "Expired leases (a dead worker's claims) returned to pending by this worker.",
    registry=WORKER,
)
DEACTIVATED = Counter(
    "carecompanion_devices_deactivated",
    "Devices deactivated because FCM refused their token for good.",
    registry=WORKER,
)
JOB_DURATION = Histogram(
    "carecompanion_job_duration_seconds",
    "Run time of the worker's periodic jobs (dispatch, reap, plan, device_health, sweep, outbox).",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600),
    registry=WORKER,
)
JOB_FAILURES = Counter(
    "carecompanion_job_failures", "Job runs that raised, by job.", ["job"], registry=WORKER
)
JOB_LAST_SUCCESS = Gauge(
    "carecompanion_job_last_success_timestamp_seconds",
    "Unix time of each job's last successful run.",
    ["job"],
    registry=WORKER,
)
HEARTBEAT = Gauge(
    "carecompanion_worker_heartbeat_timestamp_seconds",
    "Unix time of this worker's last dispatch run or batch (every --every seconds while alive).",
    registry=WORKER,
)

_ERROR_CODE = re.compile(r"^[A-Za-z_]{1,40}$")


def error_code_label(code: str | None) -> str:
    """FCM's codes are a short fixed list; anything else (an exception's text) is 'OTHER'."""
    if code is None:
        return ""
    return code if _ERROR_CODE.match(code) else "OTHER"


# -- reading them -------------------------------------------------------------------------


def use_multiprocess_dir(path: Path) -> None:
    """Count in files under ``path`` from now on (before gunicorn forks its workers).

    prometheus-client picks its value class once, at import, from the environment; the
    value of a labelled metric is made when a label set is first used, i.e. in the worker
    processes after this. The directory is emptied: files of a previous run's processes
    would otherwise be added to this one's counts forever.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_VAR] = str(path)
    values.ValueClass = values.get_value_class()


def process_exited(pid: int) -> None:
    """gunicorn's child_exit: drop a dead process's live gauges (it has none today)."""
    if os.environ.get(MULTIPROC_VAR):
        multiprocess.mark_process_dead(pid)


def api_exposition() -> bytes:
    """The API's metrics: every gunicorn process's, added up, or this process's own."""
    if os.environ.get(MULTIPROC_VAR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(API)


@cache
def _networks(allowed: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(net) for net in allowed)


def client_allowed(address: str | None, allowed: tuple[str, ...]) -> bool:
    """Is ``address`` (the socket peer) inside one of the ``allowed`` networks?"""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in _networks(allowed) if net.version == ip.version)


def serve_worker_metrics(bind: str) -> int:
    """The worker's ``/metrics`` on ``host:port`` in a thread; returns the port (0 picks)."""
    host, _, port = bind.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]"), registry=WORKER)
    return int(server.server_port)
