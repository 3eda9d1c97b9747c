"""Changing and ending caregiver access: what the caregiver hears of follows at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import fail
from backend.models import CaregiverGrant, Patient, User
from backend.reminders.planner import (
    cancel_caregiver_alerts,
    replan_for_grant,
    replan_for_patient,
)
from backend.services.dose_givers import names_a_giver


def change_grant(session: Session, grant: CaregiverGrant, changes: dict[str, Any]) -> None:
    """Change a caregiver's permissions or end date; their pending pushes about the patient
    are re-planned in the same transaction (a permission taken away stops them at once)."""
    if grant.is_managing:
        fail(409, "A managing caregiver has full access; it is not set here.")
    if not grant.is_active():
        fail(409, f"This access is {grant.status()}; invite again instead.")
    if "permissions" in changes:
        grant.permissions = sorted(set(changes["permissions"]))
    if "ends_at" in changes:
        grant.ends_at = changes["ends_at"]
    session.flush()
    replan_for_grant(session, grant.patient_id, grant.caregiver_user_id)


def end_grant(session: Session, grant: CaregiverGrant, by: User) -> None:
    """End an active grant ("left" when ``by`` is the caregiver, else "revoked") and cancel
    that caregiver's pending pushes about the patient, in the caller's transaction. Whether
    ``by`` may end it at all is the caller's check (``backend.access.may_end_grant``)."""
    if not grant.is_active():
        fail(409, f"This access is already {grant.status()}.")
    leaving = grant.caregiver_user_id == by.id
    if leaving and grant.is_managing and _sole_manager(session, grant):
        fail(
            409,
            "You are this person's only managing caregiver; hand over first.",
        )
    grant.end(by.id, "left" if leaving else "revoked")
    cancel_caregiver_alerts(session, grant.patient_id, grant.caregiver_user_id)
    if names_a_giver(session, grant.patient_id, grant.caregiver_user_id):
        # They gave doses: whoever gives them now (the others chosen, or the default) is
        # planned at once.
        session.flush()
        replan_for_patient(session, grant.patient_id)


def _sole_manager(session: Session, grant: CaregiverGrant) -> bool:
    patient = session.get(Patient, grant.patient_id)
    if patient is None or not patient.is_managed:
        return False
    others = session.scalar(
        select(CaregiverGrant.id).where(
            CaregiverGrant.patient_id == grant.patient_id,
            CaregiverGrant.is_managing.is_(True),
            CaregiverGrant.id != grant.id,
            CaregiverGrant.active_clause(now()),
        )
    )
    return others is None
