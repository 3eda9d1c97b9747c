"""The ``carecompanion`` command: a Flask CLI group with our operator commands.

Each command group lives in a module of its own; this one gathers them on the FlaskGroup
(which also lists what extensions register on ``app.cli``, such as ``openapi``).
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from backend.app import create_app
from backend.cli import console, database, demo, fhir, serve, stats, teams, tokens, worker
from backend.config import ConfigError


def _create_app_from_env() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    create_app=_create_app_from_env,
    add_version_option=False,
    load_dotenv=False,
    help="care-companion: API, worker and operator commands.",
)
cli.add_command(database.db_group)
cli.add_command(tokens.token)
cli.add_command(teams.team_group)
cli.add_command(teams.coordinator_group)
cli.add_command(worker.worker)
cli.add_command(stats.stats_group)
cli.add_command(fhir.fhir_group)
cli.add_command(demo.demo)
cli.add_command(serve.serve)
cli.add_command(console.console_group)


def main() -> None:
    cli.main(prog_name="carecompanion")
