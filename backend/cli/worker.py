"""``carecompanion worker``: the reminder worker as a process of its own."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from backend import db
from backend.config import ConfigError, Settings
from backend.firebase import firebase_app
from backend.logs import configure_logging
from notifications.channels import Channel
from notifications.channels.console import ConsoleChannel
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import DispatchConfig
from notifications.worker import run_worker


@click.command("worker")
@click.option(
    "--channel",
    "channel_name",
    type=click.Choice(["fcm", "console"]),
    default="fcm",
    show_default=True,
    help="console prints each push as the phone would show it (development).",
)
@click.option("--every", default=2.0, show_default=True, type=click.FloatRange(0.2, 60))
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 500))
@with_appcontext
def worker(channel_name: str, every: float, batch_size: int) -> None:
    """Run the reminder worker: planner, dispatcher, lease reaper, device health."""
    try:  # production unless CARECOMPANION_ENV says otherwise, as for serve
        settings = Settings.from_env(default_env="production")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format)
    channel: Channel = (
        ConsoleChannel() if channel_name == "console" else FcmChannel(firebase_app(settings))
    )
    run_worker(
        db.get_engine(),
        channel,
        config=DispatchConfig(batch_size=batch_size),
        dispatch_every=timedelta(seconds=every),
        metrics_bind=settings.worker_metrics_bind,
    )
    click.echo("worker stopped")
