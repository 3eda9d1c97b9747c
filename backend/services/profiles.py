"""Profile changes (a user's ``/me``, a patient's record), kept in step with each other, with
the reminders planned again and adherence snapshots dropped that depend on what changed.

One person, one set of preferences: zone, routine and language changed on the user apply to
their own patient record, and the other way round.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Patient, User
from backend.models.profile import PROFILE_FIELDS, ROUTINE_FIELDS
from backend.reminders.morning_summary import replan_summaries
from backend.reminders.planner import replan_for_patient, replan_for_user
from backend.services import adherence_snapshots

# What the morning summary's time depends on (backend.reminders.morning_summary).
SUMMARY_FIELDS = {
    "morning_summary",
    "morning_summary_time",
    "time_zone",
    "wake_time",
    "quiet_hours_start",
    "quiet_hours_end",
}
# What the dose slots depend on: when they change, the slots move.
SLOT_FIELDS = ("time_zone", *ROUTINE_FIELDS)


def update_me(session: Session, user: User, changes: dict[str, Any]) -> None:
    """Change the user's profile; profile fields also apply to their own patient record."""
    for name, value in changes.items():
        setattr(user, name, value)
    own = session.scalar(select(Patient).where(Patient.user_id == user.id))
    if own is not None:
        own.copy_profile_from(user, [f for f in PROFILE_FIELDS if f in changes])
    quiet = {"quiet_hours_start", "quiet_hours_end"} & changes.keys() or (
        "time_zone" in changes and user.quiet_hours_start is not None
    )
    slots_moved = any(f in changes for f in SLOT_FIELDS)
    if SUMMARY_FIELDS & changes.keys():
        session.flush()
        replan_summaries(session, user.id)
    if quiet:
        # Quiet hours are the recipient's: every patient they hear about (own included).
        session.flush()
        replan_for_user(session, user.id)
    elif own is not None and slots_moved:
        session.flush()
        replan_for_patient(session, own.id)
    if own is not None and slots_moved:
        adherence_snapshots.invalidate(session, [own.id])  # the slots moved


def update_patient(session: Session, patient: Patient, by: User, changes: dict[str, Any]) -> None:
    """Change a patient's record (by the patient or their managing caregiver); when it is
    ``by``'s own record, their profile follows."""
    for name, value in changes.items():
        setattr(patient, name, value)
    if patient.user_id == by.id:
        by.copy_profile_from(patient, [k for k in changes if k in PROFILE_FIELDS])
    if any(f in changes for f in SLOT_FIELDS):
        session.flush()
        replan_for_patient(session, patient.id)
        adherence_snapshots.invalidate(session, [patient.id])  # the slots moved
