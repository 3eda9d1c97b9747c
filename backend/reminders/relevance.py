"""Does a claimed reminder still matter? The dispatcher's re-checks, one static table.

:data:`CHECKS` maps each outbox kind to the checks the dispatcher runs on a claimed batch
of that kind (``"*"``: every kind); the worker passes it to the dispatcher. Each check answers
a whole batch in a few queries with ``{reminder id: reason}`` for those that no longer matter:

- a dose, follow-up or alert whose slot was logged (taken or skipped) -> ``dose_logged``;
  one a caregiver answered with "I'm on it" -> ``acknowledged`` (the later steps); its
  medicine stopped or paused -> ``medication_stopped`` / ``medication_paused``
  (:func:`backend.reminders.doses.dose_check`);
- an appointment cancelled or moved -> ``appointment_cancelled`` / ``appointment_moved``;
- a check-in prompt whose schedule was cancelled or expired, that was answered already, or
  whose recipient is no longer the patient or a managing caregiver;
- a device-health alert about a patient whose phone is reachable again;
- an urgent push about a work item already resolved;
- a PRN over-limit push whose dose log was undone -> ``dose_undone``;
- a refill push whose medicine is no longer active; one of a day's refill pushes once
  another goes for the same person and patient -> ``refill_told_together``
  (:mod:`backend.reminders.refills`);
- a recipient other than the patient who no longer may hear about the patient (grant
  revoked or lapsed, the permission taken away, off the care team, no longer one who gives
  that medicine's doses) -> ``access_revoked``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.reminders.appointments import appointment_check
from backend.reminders.audience import circles
from backend.reminders.checkin_prompts import prompt_check
from backend.reminders.device_health import still_unreachable
from backend.reminders.doses import dose_check
from backend.reminders.prn import over_limit_check
from backend.reminders.refills import refill_check, together_check
from backend.reminders.timeline import DOSE_KINDS
from backend.reminders.urgent import urgent_check
from notifications.dispatch import RelevanceCheck


def recipient_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """The recipient, unless it is the patient, must still be allowed to hear of it."""
    ids = {r.patient_id for r in reminders if r.patient_id is not None}
    patients = list(db.scalars(select(Patient).where(Patient.id.in_(ids))))
    circle = circles(db, patients, now())
    reasons: dict[int, str] = {}
    for r in reminders:
        if r.patient_id is None:
            continue
        c = circle.get(r.patient_id)
        subject = r.subject or {}
        med = subject.get("medication_id")
        med_id = med if isinstance(med, int) and not isinstance(med, bool) else None
        if c is None or not c.may_receive(r.user_id, r.kind, subject.get("target"), med_id):
            reasons[r.id] = "access_revoked"
    return reasons


CHECKS: Mapping[str, Sequence[RelevanceCheck]] = {
    "*": (recipient_check,),
    **{kind: (dose_check,) for kind in DOSE_KINDS},
    "refill": (refill_check, together_check),
    "appointment": (appointment_check,),
    "checkin_prompt": (prompt_check,),
    "urgent_flag": (urgent_check,),
    "device_health": (still_unreachable,),
    "prn_over_limit": (over_limit_check,),
}
