"""``carecompanion serve``: the API under gunicorn (production).

- One access line per request comes from the app (``backend.app``: request id, user id,
  route template, status, duration; JSON in production), so gunicorn's own access log, which
  knows none of these, is off; gunicorn's error log uses the same format.
- Prometheus counts are shared by the gunicorn processes through files in the instance
  folder (``prometheus/``, emptied at start; ``PROMETHEUS_MULTIPROC_DIR`` if set).
- gunicorn 25.1+ opens a control socket in ``$HOME/.gunicorn`` (or ``$XDG_RUNTIME_DIR``) by
  default: a server has no business writing into a home directory, and nothing here uses
  ``gunicornc``, so it is off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from backend import metrics
from backend.app import create_app, instance_folder
from backend.config import ConfigError, Settings
from backend.logs import formatter


class _Logs(glogging.Logger):
    """gunicorn's error log in our format (``LOG_FORMAT``)."""

    log_format = "text"

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter(self.log_format))


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)


class _Server(BaseApplication):
    """gunicorn serving ``create_app()`` on ``bind`` with ``workers`` processes."""

    def __init__(self, bind: str, workers: int, settings: Settings) -> None:
        self._bind = bind
        self._workers = workers
        self._settings = settings
        super().__init__()  # calls load_config

    def load_config(self) -> None:
        self.cfg.set("bind", self._bind)
        self.cfg.set("workers", self._workers)
        self.cfg.set("accesslog", None)  # the app logs each request itself
        self.cfg.set(
            "logger_class", type("Logs", (_Logs,), {"log_format": self._settings.log_format})
        )
        self.cfg.set("child_exit", _child_exit)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn 25.1+
            self.cfg.set("control_socket_disable", True)
        # Above the app's own limits (backend.app), so a too-long URL or header gets the
        # app's JSON 414/431 and only a grossly oversized one gunicorn's HTML page.
        self.cfg.set("limit_request_line", 8190)
        self.cfg.set("limit_request_field_size", 16380)

    def load(self) -> Flask:
        return create_app(self._settings)


@click.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(bind: str, workers: int) -> None:
    """Serve the API with gunicorn (production unless CARECOMPANION_ENV says otherwise; run
    the worker as its own process)."""
    try:
        settings = Settings.from_env(default_env="production")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    shared = os.environ.get(metrics.MULTIPROC_VAR)
    metrics.use_multiprocess_dir(
        Path(shared) if shared else Path(instance_folder(settings)) / "prometheus"
    )
    _Server(bind, workers, settings).run()
