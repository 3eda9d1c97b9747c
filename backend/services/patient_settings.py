"""A patient's setting (``medication_id`` None) or one medicine's override of it: the shape
who gives the doses (``dose_givers``) and the escalation chain (``escalation_chains``)
share. One row per patient and per medicine; the database holds that (a unique constraint,
and a partial unique index for the patient-wide row, whose NULL medicine the constraint
does not see), so two first settings made at the same moment cannot both be stored.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import fail
from backend.models import Medication, Patient, User
from backend.models.dose_givers import DoseGivers
from backend.models.escalation import EscalationChain

Setting = TypeVar("Setting", DoseGivers, EscalationChain)


def stored_setting(
    session: Session, model: type[Setting], patient: Patient, medication_id: int | None
) -> Setting | None:
    """The patient's setting, or that medicine's override (a medicine that is not the
    patient's is a 404), if one is stored."""
    if medication_id is not None:
        med = session.get(Medication, medication_id)
        if med is None or med.patient_id != patient.id:
            fail(404, "No such medication.")
    return session.scalar(
        select(model).where(
            model.patient_id == patient.id,
            model.medication_id.is_(None)
            if medication_id is None
            else model.medication_id == medication_id,
        )
    )


def save_setting(session: Session, row: Setting, by: User) -> None:
    """Stamp who changed it and when, and store a new one. Another request that stored the
    same new setting at the same moment and committed first wins: this one was chosen
    without seeing it, so it is a 409, not an overwrite (the request rolls back on an
    error; a savepoint would commit on its own on SQLite, whose driver opens no transaction
    before the first write)."""
    row.updated_by_user_id = by.id
    row.updated_at = now()
    if row.id is not None:
        return
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        fail(409, "This was just changed by someone else: look again, then retry.")
