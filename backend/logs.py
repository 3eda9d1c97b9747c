"""Logging for the API and the worker: JSON lines in production, readable text elsewhere.

``LOG_FORMAT=json`` writes one JSON object per line: ``ts`` (UTC, RFC 3339), ``level``,
``logger``, ``message`` and the fields a call passes in ``extra=`` (the request log's
``request_id``, ``user_id``, ``route``, ``status``, ``duration_ms``; the dispatch log's
counts), plus ``exc_info`` with the traceback. ``text`` writes the same as one readable
line. Fields carry ids, never a person's name: the message texts say what happened, the
ids say to whom, and only the database says who that is.

APScheduler logs two INFO lines for every run of every job ("Running job ...", "... executed
successfully"): every 2 s while nothing happens. Its loggers are kept at WARNING (DEBUG
shows them again), so an idle worker is quiet and a failing job still logs its error. Its
warning that a run was skipped because the previous one is still running is dropped too:
with ``max_instances=1`` that is the design (a dispatch draining a backlog for a minute
skips 30 runs), and the job-duration metric shows long runs better than a line every 2 s.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# The attributes every LogRecord has; anything else on a record came in ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_CHATTY = ("apscheduler",)
_SKIPPED_RUN = "maximum number of running instances reached"


def _not_a_skipped_run(record: logging.LogRecord) -> bool:
    return _SKIPPED_RUN not in record.getMessage()


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extras(record))
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in extras(record).items())
        if not fields:
            return text
        head, newline, rest = text.partition("\n")  # a traceback stays below the line
        return f"{head} {fields}{newline}{rest}"


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (a test's capture replaces it), not to the
    stream that was current when logging was configured."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str) -> None:
    """One handler on the root logger, to stderr, in ``log_format``; quiet schedulers.

    Replaces the root's handlers, so calling it again (a second app in one process, a test)
    changes the format instead of doubling every line.
    """
    root = logging.getLogger()
    handler = _Stderr()
    handler.setFormatter(formatter(log_format))
    for old in list(root.handlers):
        if isinstance(old, _Stderr):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if _not_a_skipped_run not in scheduler.filters:
        scheduler.addFilter(_not_a_skipped_run)
