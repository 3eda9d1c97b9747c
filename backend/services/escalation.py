"""Setting a patient's escalation chain (or one medicine's override), with the patient's
reminders planned again to follow it, in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import fail
from backend.models import Patient, User
from backend.models.escalation import EscalationChain
from backend.reminders.audience import circles
from backend.reminders.escalation import Step
from backend.reminders.planner import replan_for_patient
from backend.services.patient_settings import save_setting, stored_setting


def set_chain(
    session: Session,
    patient: Patient,
    by: User,
    medication_id: int | None,
    steps: list[dict[str, Any]] | None,
) -> None:
    """Set the patient's chain (``medication_id`` None) or that medicine's override;
    ``steps`` None goes back to the default. A caregiver named in a step must receive the
    patient's missed-dose alerts."""
    chain = stored_setting(session, EscalationChain, patient, medication_id)
    holders = circles(session, [patient], now())[patient.id].alert_holders
    named = [s["user_id"] for s in steps or [] if s["notify"] == "caregiver"]
    if any(u not in holders for u in named):
        message = "Not a caregiver of this patient who receives missed-dose alerts."
        fail(422, message, errors={"json": {"steps": [message]}})
    if steps is None:
        if chain is not None:
            session.delete(chain)
    else:
        clean = [
            Step(timedelta(minutes=s["after_minutes"]), s["notify"], s.get("user_id"))
            for s in steps
        ]
        chain = chain or EscalationChain(patient_id=patient.id, medication_id=medication_id)
        chain.steps = [s.as_json() for s in clean]
        save_setting(session, chain, by)
    session.flush()
    replan_for_patient(session, patient.id)
