"""Adherence snapshots (``backend/models/adherence``): store, read, invalidate.

* **Written** by the worklist sweep's dose rules for the patients of each batch (7 days by
  ``missed_doses``, 30 by ``low_adherence``: the tallies they compute anyway), and by the
  panel for the patients it had to compute live; one upsert statement per call.
* **Read** by the panel when fresh: computed at most ``FRESH_FOR`` before now (and not after
  it: a row from a sweep run for a later instant is recomputed).
* **Deleted** for a patient when something their adherence depends on changes: a dose logged,
  corrected or undone, a medicine added or changed, the patient's zone or routine changed. The
  delete runs in the same transaction as the change, so once it commits the panel computes
  that patient live again (and stores the new numbers) instead of showing an old one.

Known gap: a sweep batch (or a panel request) that read the dose logs just before a dose was
committed, and stores its snapshot just after, stores numbers without that dose; they are
served until the row is ``FRESH_FOR`` old (or the next sweep replaces it), never longer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from backend.db import as_text_arrays, unnest_insert
from backend.models import AdherenceSnapshot, Patient
from backend.models.adherence import TALLY_COLUMNS

log = logging.getLogger(__name__)

# The sweep runs every 15 minutes (``carecompanion worker``); a snapshot stays usable for
# one sweep interval plus the time a sweep over every enrolled patient takes (about a minute
# for 10,000 patients) and some slack, so a panel opened between two sweeps reads snapshots,
# and one opened after a missed sweep computes live instead of showing older numbers.
FRESH_FOR = timedelta(minutes=20)


def is_fresh(computed_at: datetime, at: datetime) -> bool:
    return at - FRESH_FOR <= computed_at <= at


_UPDATED = ("computed_at", *TALLY_COLUMNS)
_SNAPSHOT_COLUMNS = (
    ("patient_id", "integer"),
    ("days", "smallint"),
    ("computed_at", "timestamptz"),
    *((name, "integer") for name in TALLY_COLUMNS[:-2]),
    ("dose_adherence", "float8"),
    ("pdc", "float8"),
)
# PostgreSQL: the rows as one array per column (backend.db.unnest_insert): a panel computed
# live stores 2,000 rows, which psycopg's executemany sent as 2,000 statements.
_STORE_PG = text(
    "{insert} ON CONFLICT (patient_id, days) DO UPDATE SET {updates} "
    "WHERE adherence_snapshots.computed_at <= excluded.computed_at".format(
        insert=unnest_insert("adherence_snapshots", _SNAPSHOT_COLUMNS),
        updates=", ".join(f"{name} = excluded.{name}" for name in _UPDATED),
    )
)
_INSERT_SQLITE = sqlite.insert(AdherenceSnapshot)
# SQLite: the same upsert with the rows as parameters; SQLAlchemy compiles it once and sends
# multi-row INSERTs of up to 1,000 rows ("insertmanyvalues").
_STORE_SQLITE = _INSERT_SQLITE.on_conflict_do_update(
    index_elements=["patient_id", "days"],
    set_={name: _INSERT_SQLITE.excluded[name] for name in _UPDATED},
    where=AdherenceSnapshot.computed_at <= _INSERT_SQLITE.excluded.computed_at,
)


def store(db: Session, tallies: Mapping[int, Mapping[str, Any]], days: int, at: datetime) -> None:
    """Insert or refresh the (patient, days) snapshots of these tallies (patient id ->
    ``Tally.as_dict()``), computed at ``at``,
    in the caller's transaction. A row computed for a later instant is kept (two writers:
    the newer tally wins whatever the order they commit in). Rows go in patient order, so
    two writers lock shared rows in the same order (no deadlock on PostgreSQL)."""
    rows = [
        {"patient_id": pid, "days": days, "computed_at": at, **tallies[pid]}
        for pid in sorted(tallies)
    ]
    if not rows:
        return
    if db.get_bind().dialect.name == "postgresql":
        db.execute(_STORE_PG, as_text_arrays(rows, [name for name, _ in _SNAPSHOT_COLUMNS]))
    else:
        db.execute(_STORE_SQLITE, rows)


def store_quietly(
    db: Session, tallies: Mapping[int, Mapping[str, Any]], days: int, at: datetime
) -> None:
    """:func:`store` for a reader (the panel): the numbers are already computed and shown
    whatever happens here, so a busy database (SQLite's write lock held past its timeout by
    a sweep batch, a PostgreSQL lock timeout) costs the snapshots, not the request."""
    try:
        with db.begin_nested():
            store(db, tallies, days, at)
    except OperationalError as exc:
        log.warning("adherence snapshots not stored (%d patients): %s", len(tallies), exc.orig)


def invalidate(db: Session, patient_ids: Sequence[int], settled_days: bool = True) -> None:
    """Delete these patients' snapshots (every period), in the caller's transaction; and,
    unless the change cannot touch a settled day (``settled_days=False``: a dose logged
    before its slot was settled), make their stored day tallies stale
    (``backend/models/adherence.AdherenceDay``) by bumping ``patients.adherence_version``.
    The bump takes the patients' row locks until the commit: a panel storing day tallies
    checks the version under a share lock, so it never stores one computed before the
    change with the version after it (``backend/services/adherence_counts``)."""
    if not patient_ids:
        return
    db.execute(
        delete(AdherenceSnapshot)
        .where(AdherenceSnapshot.patient_id.in_(list(patient_ids)))
        .execution_options(synchronize_session=False)
    )
    if settled_days:
        db.execute(
            update(Patient)
            .where(Patient.id.in_(sorted(patient_ids)))
            .values(adherence_version=Patient.adherence_version + 1)
            .execution_options(synchronize_session=False)
        )
