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

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

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


def _insert(db: Session) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(AdherenceSnapshot)


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
    stmt = _insert(db)
    stmt = stmt.on_conflict_do_update(
        index_elements=["patient_id", "days"],
        set_={name: stmt.excluded[name] for name in ("computed_at", *TALLY_COLUMNS)},
        where=AdherenceSnapshot.computed_at <= stmt.excluded.computed_at,
    )
    # The rows as parameters, not as one VALUES list: the statement is compiled once and
    # cached, and SQLAlchemy sends the rows as multi-row INSERTs of up to 1,000 rows
    # ("insertmanyvalues"; one statement for a sweep batch of 500). Compiling a 2,000-row
    # VALUES list cost 0.8 s of Python on every panel computed live; this costs ~60 ms.
    db.execute(stmt, rows)


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
