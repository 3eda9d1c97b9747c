"""Appointment rules: booking, edits, outcomes, reschedule and cancel, each with its history row.

Every change goes through this module, so every change leaves a history row and reaches
:func:`replan_reminders`, the one place reminders follow appointments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from backend.access import Action, care_team_role, resolve
from backend.clock import now
from backend.errors import ServiceError, invalid
from backend.models import Appointment, AppointmentEvent, Patient, User
from backend.models.appointment import when
from backend.reminders.planner import replan_for_appointment

# Where it takes place, by type: a place, or a video link (which may come later).
_PLACE_REQUIRED = ("in_person", "lab")


def replan_reminders(session: Session, appointment: Appointment) -> None:
    """THE hook for appointment reminders; called after every change to an appointment.

    The planner (``backend/reminders/planner.py``) plans from the appointment's current state,
    not from the change: for a booked appointment, one reminder per lead time (to the
    patient and the attending caregiver) at ``start_at - lead``, keyed by appointment, lead
    and start so that planning again creates nothing twice; pending ones for an old start
    time, a dropped lead time or an appointment no longer booked are cancelled.
    """
    replan_for_appointment(session, appointment.id)


def book(session: Session, patient: Patient, by: User, data: dict[str, Any]) -> Appointment:
    """A new booked appointment; ``data`` as the create schema loads it."""
    data = dict(data)
    data.setdefault("time_zone", patient.time_zone)
    if "reminder_lead_minutes" in data:
        data["reminder_lead_minutes"] = _leads(data["reminder_lead_minutes"])
    _check(session, patient.id, {**_placement_defaults(), **data}, data)
    at = now()
    appointment = Appointment(
        patient_id=patient.id,
        status="booked",
        created_by_user_id=by.id,
        created_at=at,
        updated_by_user_id=by.id,
        updated_at=at,
        **data,
    )
    session.add(appointment)
    session.flush()
    _record(session, appointment, by, "created", None, appointment.when())
    replan_reminders(session, appointment)
    return appointment


def edit(session: Session, appointment: Appointment, by: User, changes: dict[str, Any]) -> None:
    """Field edits and outcomes (``status``); times change only by :func:`reschedule`."""
    if appointment.status == "cancelled":
        raise ServiceError(409, "This appointment is cancelled; book a new one instead.")
    changes = dict(changes)
    if "reminder_lead_minutes" in changes:
        changes["reminder_lead_minutes"] = _leads(changes["reminder_lead_minutes"])
    changed = {k: v for k, v in changes.items() if getattr(appointment, k) != v}
    if not changed:
        return
    status = changed.pop("status", None)
    if status is not None and not appointment.has_started():
        raise ServiceError(409, f"It has not started yet; it cannot be {status} now.")
    current = {k: getattr(appointment, k) for k in _placement_defaults()}
    _check(session, appointment.patient_id, {**current, **changed}, changed)
    if changed:
        before = {k: getattr(appointment, k) for k in changed}
        for key, value in changed.items():
            setattr(appointment, key, value)
        _record(session, appointment, by, "edited", before, changed)
    if status is not None:
        before_status = appointment.status
        appointment.status = status
        _record(session, appointment, by, "status", {"status": before_status}, {"status": status})
    _save(session, appointment, by)
    replan_reminders(session, appointment)


def reschedule(
    session: Session,
    appointment: Appointment,
    by: User,
    start: datetime,
    end: datetime,
    time_zone: str | None = None,
    reason: str | None = None,
) -> None:
    """Move a booked appointment; the history keeps the time it had."""
    if not appointment.is_booked:
        label = appointment.status.replace("_", " ")
        raise ServiceError(409, f"This appointment is {label}; book a new one instead.")
    before = appointment.when()
    after = when(start, end, time_zone or appointment.time_zone)
    if after == before:
        raise invalid({"start": ["That is already the appointment's time."]})
    appointment.start_at, appointment.end_at = start, end
    appointment.time_zone = after["time_zone"]
    appointment.sequence += 1  # calendars that hold the old time replace it
    _record(session, appointment, by, "rescheduled", before, after, reason)
    _save(session, appointment, by)
    replan_reminders(session, appointment)


def cancel(session: Session, appointment: Appointment, by: User, reason: str | None) -> None:
    """Cancel a booked appointment; it stays listed, as cancelled."""
    if not appointment.is_booked:
        label = appointment.status.replace("_", " ")
        raise ServiceError(409, f"This appointment is already {label}.")
    appointment.status = "cancelled"
    appointment.sequence += 1  # calendars show it cancelled rather than keep the old copy
    _record(
        session, appointment, by, "cancelled", {"status": "booked"}, {"status": "cancelled"}, reason
    )
    _save(session, appointment, by)
    replan_reminders(session, appointment)


def _leads(minutes: list[int]) -> list[int]:
    # Earliest notice first, the order in which they will go out.
    return sorted(minutes, reverse=True)


def _placement_defaults() -> dict[str, Any]:
    return {"type": None, "location": None, "video_url": None}


def _check(
    session: Session, patient_id: int, state: dict[str, Any], changed: dict[str, Any]
) -> None:
    """Rules across fields and against other records; ``state`` is the result of the change."""
    errors: dict[str, list[str]] = {}
    kind = state["type"]
    if kind == "telehealth":
        if state["location"] is not None:
            errors["location"] = ["A telehealth visit has a video link, not a location."]
    elif state["video_url"] is not None:
        errors["video_url"] = ["Only a telehealth visit has a video link."]
    elif kind in _PLACE_REQUIRED and state["location"] is None:
        errors["location"] = [f"Say where the {kind.replace('_', ' ')} appointment is."]
    provider = changed.get("provider_user_id")
    if provider is not None and care_team_role(provider, patient_id) is None:
        errors["provider_user_id"] = ["Not a member of this patient's care team."]
    attendee = changed.get("attendee_user_id")
    if attendee is not None and not _may_attend(session, attendee, patient_id):
        errors["attendee_user_id"] = ["Not a caregiver of this patient who may see appointments."]
    if errors:
        raise invalid(errors)


def _may_attend(session: Session, user_id: int, patient_id: int) -> bool:
    user = session.get(User, user_id)
    if user is None:
        return False
    access = resolve(user, patient_id)
    return access is not None and access.is_caregiver and access.allows(Action.VIEW_APPOINTMENTS)


def _save(session: Session, appointment: Appointment, by: User) -> None:
    appointment.updated_at = now()
    appointment.updated_by_user_id = by.id
    try:
        session.flush()
    except StaleDataError:
        raise ServiceError(
            409, "Someone changed this appointment at the same moment; reload it and retry."
        ) from None


def _record(
    session: Session,
    appointment: Appointment,
    by: User,
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None = None,
) -> None:
    session.add(
        AppointmentEvent(
            appointment_id=appointment.id,
            at=now(),
            by_user_id=by.id,
            kind=kind,
            from_value=before,
            to_value=after,
            reason=reason,
        )
    )
