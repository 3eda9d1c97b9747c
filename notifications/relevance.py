"""Does a claimed reminder still matter? The dispatcher's re-checks, and the dose-logged hook.

:func:`register` installs the checks with ``notifications.dispatch`` (once; the worker and
the tests call it). Each check answers a whole claimed batch in a few queries:

- a dose, follow-up or alert whose slot was logged (taken or skipped) -> ``dose_logged``;
  one a caregiver answered with "I'm on it" -> ``acknowledged`` (the later steps);
- its medicine stopped or paused -> ``medication_stopped`` / ``medication_paused``;
- an appointment cancelled or moved -> ``appointment_cancelled`` / ``appointment_moved``;
- a check-in prompt whose schedule was cancelled or expired, that was answered already, or
  whose recipient is no longer the patient or a managing caregiver
  (``backend.services.checkin_schedules.prompt_check``);
- a device-health alert about a patient whose phone is reachable again
  (``notifications.device_health.still_unreachable``) -> ``device health restored``;
- a recipient other than the patient who no longer may hear about the patient (grant
  revoked or lapsed, the permission taken away, off the care team) -> ``access_revoked``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from backend.clock import now
from backend.models.appointment import Appointment
from backend.models.medication import DoseLog, Medication
from backend.models.patient import Patient
from notifications.dispatch import register_relevance_check, unregister_relevance_check
from notifications.escalation import DoseAcknowledgement, circles
from notifications.outbox import Reminder, cancel
from notifications.planner import DOSE_KINDS


def _slots(reminders: Sequence[Reminder]) -> set[tuple[int, str]]:
    return {
        (int(r.subject["medication_id"]), str(r.subject["slot_key"]))
        for r in reminders
        if "slot_key" in (r.subject or {})
    }


def dose_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    slots = _slots(reminders)
    if not slots:
        return {}
    med_ids = {m for m, _ in slots}
    status = dict(
        db.execute(select(Medication.id, Medication.status).where(Medication.id.in_(med_ids))).all()
    )
    logged = set(
        db.execute(
            select(DoseLog.medication_id, DoseLog.slot_key).where(
                tuple_(DoseLog.medication_id, DoseLog.slot_key).in_(list(slots)),
                DoseLog.undone_at.is_(None),
            )
        ).all()
    )
    acked = set(
        db.execute(
            select(DoseAcknowledgement.medication_id, DoseAcknowledgement.slot_key).where(
                tuple_(DoseAcknowledgement.medication_id, DoseAcknowledgement.slot_key).in_(
                    list(slots)
                )
            )
        ).all()
    )
    reasons: dict[int, str] = {}
    for r in reminders:
        if "slot_key" not in (r.subject or {}):
            continue
        slot = (int(r.subject["medication_id"]), str(r.subject["slot_key"]))
        state = status.get(slot[0], "stopped")
        if state != "active":
            reasons[r.id] = f"medication_{state}"
        elif slot in logged:
            reasons[r.id] = "dose_logged"
        elif slot in acked and r.kind != "dose":
            reasons[r.id] = "acknowledged"
    return reasons


def refill_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    ids = {int(r.subject["medication_id"]) for r in reminders if "medication_id" in r.subject}
    status = dict(
        db.execute(select(Medication.id, Medication.status).where(Medication.id.in_(ids))).all()
    )
    return {
        r.id: f"medication_{status.get(int(r.subject['medication_id']), 'stopped')}"
        for r in reminders
        if status.get(int(r.subject.get("medication_id", 0))) != "active"
    }


def appointment_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    ids = {int(r.subject["appointment_id"]) for r in reminders if "appointment_id" in r.subject}
    found = {a.id: a for a in db.scalars(select(Appointment).where(Appointment.id.in_(ids)))}
    reasons: dict[int, str] = {}
    for r in reminders:
        appt = found.get(int(r.subject.get("appointment_id", 0)))
        if appt is None or appt.status != "booked":
            reasons[r.id] = "appointment_cancelled"
        elif appt.start_at.isoformat() != r.subject.get("start"):
            reasons[r.id] = "appointment_moved"
    return reasons


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
        target = (r.subject or {}).get("target")
        if c is None or not c.may_receive(r.user_id, r.kind, target):
            reasons[r.id] = "access_revoked"
    return reasons


def register() -> None:
    """Install the checks with the dispatcher (idempotent)."""
    for kind in DOSE_KINDS:
        register_relevance_check(kind, dose_check)
    register_relevance_check("refill", refill_check)
    register_relevance_check("appointment", appointment_check)
    register_relevance_check("*", recipient_check)
    from backend.services.worklist import urgent_check

    register_relevance_check("urgent_flag", urgent_check)
    from backend.services.checkin_schedules import prompt_check

    register_relevance_check("checkin_prompt", prompt_check)
    from notifications.device_health import still_unreachable

    register_relevance_check("device_health", still_unreachable)


def unregister() -> None:
    """Remove the checks (tests that exercise the bare dispatcher)."""
    for kind in DOSE_KINDS:
        unregister_relevance_check(kind, dose_check)
    unregister_relevance_check("refill", refill_check)
    unregister_relevance_check("appointment", appointment_check)
    unregister_relevance_check("*", recipient_check)
    from backend.services.worklist import urgent_check

    unregister_relevance_check("urgent_flag", urgent_check)
    from backend.services.checkin_schedules import prompt_check

    unregister_relevance_check("checkin_prompt", prompt_check)
    from notifications.device_health import still_unreachable

    unregister_relevance_check("device_health", still_unreachable)


def on_dose_logged(db: Session, patient_id: int, medication_id: int, slot_key: str) -> int:
    """A dose was logged (or skipped): what is still pending for its slot goes, at once."""
    return cancel(
        db,
        reason="dose_logged",
        patient_id=patient_id,
        kinds=DOSE_KINDS,
        subject={"medication_id": medication_id, "slot_key": slot_key},
    )


def on_acknowledged(db: Session, reminder: Reminder) -> int:
    """ "I'm on it": the later steps of that dose stop."""
    subject = reminder.subject or {}
    return cancel(
        db,
        reason="acknowledged",
        patient_id=reminder.patient_id,
        kinds=("dose_followup", "missed_dose_alert"),
        subject={"medication_id": int(subject["medication_id"]), "slot_key": subject["slot_key"]},
    )
