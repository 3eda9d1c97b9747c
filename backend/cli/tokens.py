"""``carecompanion token``: development ID tokens for the auth emulator."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from backend.cli.common import current_settings, personas
from backend.config import ConfigError
from backend.devtokens import emulator_token


@click.command("token")
@click.option("--as", "persona", help="A demo persona (maria, ana, david, priya, omar, sam).")
@click.option("--uid", help="Any Firebase uid instead of a persona.")
@click.option("--hours", default=12, show_default=True, type=click.IntRange(1, 24 * 7))
@with_appcontext
def token(persona: str | None, uid: str | None, hours: int) -> None:
    """Print a development ID token (auth-emulator mode only)."""
    if bool(persona) == bool(uid):
        raise click.UsageError("give exactly one of --as or --uid")
    email = name = None
    if persona:
        people = personas()
        if persona not in people:
            raise click.BadParameter(f"choose one of {', '.join(people)}", param_hint="--as")
        uid, email, name = (people[persona][k] for k in ("uid", "email", "name"))
    assert uid is not None
    try:
        click.echo(emulator_token(current_settings(), uid, email, name, timedelta(hours=hours)))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
