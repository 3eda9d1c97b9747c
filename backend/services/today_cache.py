"""Reading and writing the today view's cache (``backend/models/today_cache``): which of the
wanted (patient, day) pairs are still good, and storing the ones just computed.

The cache is written by the request that missed, in its own transaction (the one that also
writes the access log), so a GET that computes a day pays one multi-row upsert; a hit is a
single SELECT of the rendered sections for every person the reader cares for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.models import Patient, TodayCacheRow

# A section name -> its JSON text, as the API renders it.
Sections = dict[str, str]
SECTIONS = (
    "doses",
    "extra_doses",
    "prn",
    "appointments",
    "activities",
    "checkins",
    "checkins_for_caregivers",
)
# Even a day whose statuses will not change for hours is recomputed after this: a belt to
# the braces of the version and of the computed boundaries (one recomputation per patient
# and hour with views costs nothing that matters).
LONGEST = timedelta(hours=1)
# Rows for days this long ago are pruned by the worker (nobody opens last week's "today").
KEEP_DAYS = 2


@dataclass(frozen=True)
class Wanted:
    patient: Patient
    day: date


@dataclass(frozen=True)
class Lookup:
    """What the cache holds for the wanted days: the good rows' sections by patient id, and
    each wanted patient's current version (read from the database in the same statement, not
    from a ``Patient`` a long-lived session may hold from before a change)."""

    found: dict[int, Sections]
    versions: dict[int, int]


# Built once (the hottest read there is): each wanted patient's version, with their rows for
# the wanted days.
_READ = (
    select(
        Patient.id,
        Patient.today_version,
        TodayCacheRow.day,
        TodayCacheRow.version,
        TodayCacheRow.valid_until,
        *(getattr(TodayCacheRow, name) for name in SECTIONS),
    )
    .outerjoin(
        TodayCacheRow,
        and_(
            TodayCacheRow.patient_id == Patient.id,
            TodayCacheRow.day.in_(bindparam("days", expanding=True)),
        ),
    )
    .where(Patient.id.in_(bindparam("ids", expanding=True)))
)


def read(db: Session, wanted: Sequence[Wanted], at: datetime) -> Lookup:
    """One SELECT: each wanted patient's version, with their cached rows for the wanted days.
    A row is good when it was computed at the current version and no status in it has
    changed since."""
    if not wanted:
        return Lookup({}, {})
    want = {w.patient.id: w.day for w in wanted}
    rows = db.execute(_READ, {"ids": list(want), "days": list(set(want.values()))})
    lookup = Lookup({}, {})
    for patient_id, current, day, version, valid_until, *sections in rows:
        lookup.versions[patient_id] = current
        if day == want[patient_id] and version == current and at < valid_until:
            lookup.found[patient_id] = dict(zip(SECTIONS, sections, strict=True))
    return lookup


def store(
    db: Session,
    computed: Sequence[tuple[Wanted, int, datetime, Sections]],
    at: datetime,
) -> None:
    """Insert or replace the rows for these days -- (day, the patient's version read before
    the day was computed, the next change, the sections) -- computed at ``at``; a row computed
    at a newer version is kept. Rows go in patient order (two writers lock shared rows in the
    same order)."""
    if not computed:
        return
    rows: list[dict[str, Any]] = sorted(
        (
            {
                "patient_id": w.patient.id,
                "day": w.day,
                "version": version,
                "valid_until": min(changes, at + LONGEST),
                "computed_at": at,
                **{name: sections[name] for name in SECTIONS},
            }
            for w, version, changes, sections in computed
        ),
        key=lambda row: row["patient_id"],
    )
    dialect = db.get_bind().dialect.name
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(TodayCacheRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["patient_id", "day"],
        set_={
            name: stmt.excluded[name]
            for name in ("version", "valid_until", "computed_at", *SECTIONS)
        },
        where=TodayCacheRow.version <= stmt.excluded.version,
    )
    db.execute(stmt, rows)


def prune(db: Session, today: date) -> int:
    """Drop the rows of days long gone; returns how many."""
    result = db.execute(
        delete(TodayCacheRow).where(TodayCacheRow.day < today - timedelta(days=KEEP_DAYS))
    )
    return int(getattr(result, "rowcount", 0) or 0)
