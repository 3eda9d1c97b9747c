"""``carecompanion fhir import FILE|DIR``: bring FHIR R4 bundles (or lone resources) in as
the operator, printing what each did (``backend/services/fhir_import.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from backend import db
from backend.errors import ServiceError
from backend.models import User
from backend.services.fhir_import import Report, import_as_operator

fhir_group = AppGroup("fhir", help="FHIR R4 import (operators).")


def _files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.json")) if path.is_dir() else [path]


@fhir_group.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--manager-uid",
    required=True,
    help="Firebase uid of the user who manages the patients the import creates "
    "and is recorded as the author of its changes.",
)
@click.option("--time-zone", default="UTC", show_default=True, help="Zone of new patients.")
def fhir_import(path: Path, manager_uid: str, time_zone: str) -> None:
    """Import FHIR R4 bundles from a file or every *.json under a folder."""
    by = db.session.scalar(select(User).where(User.firebase_uid == manager_uid))
    if by is None:
        raise click.ClickException(f"No user with uid {manager_uid}.")
    for file in _files(path):
        try:
            reports = import_as_operator(db.session(), json.loads(file.read_text()), by, time_zone)
        except (ServiceError, ValueError) as exc:
            db.session.rollback()
            click.echo(f"{file.name}: refused: {getattr(exc, 'message', exc)}")
            continue
        db.session.commit()
        for report in reports:
            _print(file.name, report)


def _print(name: str, report: Report) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in report.counts.items())
    click.echo(f"{name}: patient {report.patient_id} ({report.patient}): {counts}")
    for outcome in report.outcomes:
        if outcome.status == "refused":
            click.echo(f"  refused {outcome.resource} [{outcome.field or '-'}]: {outcome.reason}")
    if report.ignored:
        ignored = ", ".join(f"{t} {n}" for t, n in sorted(report.ignored.items()))
        click.echo(f"  not brought in (kinds we do not import): {ignored}")
