"""An as-needed (PRN) dose over its 24-hour maximum: recorded all the same (the truth
matters; the log says ``over_limit``), and in the same transaction

* a ``prn_over_limit`` worklist item for the care team, one open per medicine (keyed
  ``prn_over_limit:{medication}``; a further dose over the limit refreshes it with the new
  count; once resolved, only a newer dose reopens it), not urgent: a nurse calls back
  the same day, it does not page the whole team;
* a push to the caregivers who receive missed-dose alerts, except whoever logged it
  (``backend.reminders.prn``).

Only the 24-hour maximum counts here; a dose taken sooner than the minimum interval is
``over_limit`` in the log (``prn.available_now`` was false) but raises nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from backend.models import DoseLog, Medication, Patient
from backend.models.worklist import WorkItem
from backend.reminders.prn import KIND, push_over_limit
from backend.services.worklist import raise_work_item


def over_the_maximum(
    db: Session, med: Medication, patient: Patient, log: DoseLog, count: int, at: datetime
) -> WorkItem | None:
    """``log`` made ``count`` doses in 24 hours, over ``med``'s maximum: raise the item and
    queue the pushes; returns the item."""
    limit = med.prn_max_per_24h
    item = raise_work_item(
        db,
        patient_id=patient.id,
        kind=KIND,
        key=f"{KIND}:{med.id}",
        title=f"{med.name}: {count} doses in 24 hours, over the maximum of {limit}",
        detail={
            "medication_id": med.id,
            "dose_log_id": log.id,
            "taken_last_24h": count,
            "max_per_24h": limit,
            "logged_by_user_id": log.logged_by_user_id,
        },
        evidence_at=log.taken_at,
        at=at,
    )
    push_over_limit(db, patient, log, at)
    return item
