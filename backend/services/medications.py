"""Adding and changing a medicine, with what follows: its reminders planned again and the
patient's adherence snapshots dropped, in the caller's transaction."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import fail
from backend.models import Medication, Patient, User
from backend.reminders.planner import replan_for_medication
from backend.services import adherence_snapshots


def add_medication(
    session: Session, patient: Patient, by: User, data: dict[str, Any]
) -> Medication:
    """A new medicine for ``patient``; ``data`` as the create schema loads it (``start_date``
    defaults to today in the patient's zone)."""
    data = dict(data)
    data.setdefault("start_date", now().astimezone(ZoneInfo(patient.time_zone)).date())
    med = Medication(
        patient_id=patient.id,
        created_by_user_id=by.id,
        home_time_zone=patient.time_zone,
        created_at=now(),
        updated_at=now(),
        **data,
    )
    session.add(med)
    session.flush()
    _changed(session, med)
    return med


def update_medication(session: Session, med: Medication, changes: dict[str, Any]) -> None:
    """Change a medicine (dose, schedule, status, supply); the result must still have an end
    no earlier than its start, and a schedule unless it is as-needed."""
    for name, value in changes.items():
        setattr(med, name, value)
    if med.end_date is not None and med.end_date < med.start_date:
        fail(
            422,
            "Ends before it starts.",
            errors={"json": {"end_date": ["Ends before it starts."]}},
        )
    if not med.timing and not med.as_needed:
        fail(
            422,
            "A schedule is needed unless the medicine is as-needed.",
            errors={"json": {"timing": ["Required unless as_needed."]}},
        )
    med.updated_at = now()
    session.flush()
    _changed(session, med)


def _changed(session: Session, med: Medication) -> None:
    """Its reminders follow the medicine as it is now; the patient's adherence is computed
    again (its slots may have moved)."""
    replan_for_medication(session, med.id)
    adherence_snapshots.invalidate(session, [med.patient_id])
