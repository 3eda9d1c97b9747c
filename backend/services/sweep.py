"""The worklist sweep: the computed rules, run over every enrolled patient (the worker's job).

:data:`RULES` is the one table of computed rules. A rule looks at a batch of patients at an
instant and raises (or resolves by system) the work items it finds, in the caller's
transaction; see each rule's module for what it looks for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend.clock import now
from backend.db import write_transaction
from backend.models import Enrollment
from backend.models.worklist import UNRESOLVED, WorkItem
from backend.services import checkin_schedules, dose_rules, transitions

# A computed rule looks at some patients at an instant and raises what it finds.
Rule = Callable[[Session, datetime, Sequence[int]], None]

RULES: Mapping[str, Rule] = {
    "missed_doses": dose_rules.missed_doses,
    "low_adherence": dose_rules.low_adherence,
    checkin_schedules.OVERDUE: checkin_schedules.overdue_rule,
    "no_follow_up": transitions.follow_up_rule,
    "transition_tasks": transitions.transition_task_rule,
}


def enrolled_patient_ids(db: Session) -> list[int]:
    """Patients on at least one care team: the only ones a worklist can show."""
    return list(
        db.scalars(
            select(Enrollment.patient_id)
            .where(Enrollment.active_clause())
            .distinct()
            .order_by(Enrollment.patient_id)
        )
    )


def sweep(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    """Run every computed rule over these patients, in the caller's transaction."""
    for rule in RULES.values():
        rule(db, at, patient_ids)


def run_sweep(engine: Engine, at: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """The worker's job: every enrolled patient, ``batch`` per transaction (so SQLite's write
    lock is held for one batch at a time); returns the unresolved items per kind."""
    at = at or now()
    with Session(engine) as db:
        patient_ids = enrolled_patient_ids(db)
    for start in range(0, len(patient_ids), batch):
        with write_transaction(engine) as conn, Session(bind=conn) as db:
            sweep(db, at, patient_ids[start : start + batch])
            db.flush()
    with Session(engine) as db:
        rows = db.execute(
            select(WorkItem.kind, func.count())
            .where(WorkItem.status.in_(UNRESOLVED))
            .group_by(WorkItem.kind)
        )
        return {kind: int(n) for kind, n in rows}
