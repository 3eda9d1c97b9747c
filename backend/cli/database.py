"""``carecompanion db``: migrations and the demo fixtures."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from backend import db, migrate
from backend.fixtures import DEFAULT_FIXTURES, load_fixtures

db_group = AppGroup("db", help="Database schema.")


@db_group.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    migrate.upgrade(db.get_engine(), revision)
    click.echo(f"database at {revision} ({db.get_engine().dialect.name})")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    migrate.revision(db.get_engine(), message)


@db_group.command("load-fixtures")
@click.option("--path", type=click.Path(exists=True, path_type=Path), default=DEFAULT_FIXTURES)
def db_load_fixtures(path: Path) -> None:
    """Load the demo people (idempotent)."""
    load_fixtures(db.session(), path)
    db.session.commit()
    click.echo(f"fixtures loaded from {path.name}")
