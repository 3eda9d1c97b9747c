"""``carecompanion stats``: operational numbers."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from backend import db
from backend.cli.common import parse_instant
from backend.clock import now
from notifications.stats import format_stats, reminder_stats

stats_group = AppGroup("stats", help="Operational numbers.")


@stats_group.command("reminders")
@click.option("--since", help="ISO date or time (UTC if no offset); default: 24 h ago.")
@click.option("--until", help="ISO date or time (UTC if no offset); default: now.")
def stats_reminders(since: str | None, until: str | None) -> None:
    """Lateness (p50/p95/max), states, failure and open rates of reminders due in a period."""
    end = parse_instant(until, "--until") if until else now()
    start = parse_instant(since, "--since") if since else end - timedelta(hours=24)
    if start >= end:
        raise click.BadParameter("must be before --until", param_hint="--since")
    click.echo(format_stats(reminder_stats(db.session(), start, end)))
