"""``carecompanion serve``: the API under gunicorn (production)."""

from __future__ import annotations

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from backend.app import create_app
from backend.config import ConfigError, Settings


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
        self.cfg.set("accesslog", "-")
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
    _Server(bind, workers, settings).run()
