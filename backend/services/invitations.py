"""Consent by invitation: single-use, expiring, high-entropy codes, stored hashed."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.clock import now
from backend.config import Settings
from backend.errors import ServiceError
from backend.models import CaregiverGrant, Invitation, Patient, RedemptionAttempt, User
from backend.models.caregiving import hash_code

CODE_BYTES = 24  # 192 bits; the brief asks for at least 128


@dataclass(frozen=True)
class Redeemed:
    invitation: Invitation
    grant: CaregiverGrant | None


def create_invitation(
    db: Session,
    patient: Patient,
    by: User,
    settings: Settings,
    *,
    kind: str = "caregiver",
    relationship: str = "other",
    permissions: list[str] | None = None,
    invitee_name: str | None = None,
    expires_in_hours: int | None = None,
    grant_ends_at: datetime | None = None,
) -> tuple[Invitation, str]:
    """Returns the invitation and its code; the code is shown once and never stored."""
    code = secrets.token_urlsafe(CODE_BYTES)
    invitation = Invitation(
        patient_id=patient.id,
        created_by_user_id=by.id,
        code_hash=hash_code(code),
        kind=kind,
        relationship=relationship,
        permissions=sorted(set(permissions or [])),
        invitee_name=invitee_name,
        grant_ends_at=grant_ends_at,
        created_at=now(),
        expires_at=now() + timedelta(hours=expires_in_hours or settings.invitation_ttl_hours),
    )
    db.add(invitation)
    db.flush()
    return invitation, code


def check_rate_limit(db: Session, user: User, settings: Settings) -> None:
    window = timedelta(minutes=settings.invitation_failure_window_min)
    since = now() - window
    failures, oldest = db.execute(
        select(func.count(), func.min(RedemptionAttempt.attempted_at)).where(
            RedemptionAttempt.user_id == user.id, RedemptionAttempt.attempted_at > since
        )
    ).one()
    if failures >= settings.invitation_max_failures:
        retry = max(1, math.ceil((oldest + window - now()).total_seconds()))
        raise ServiceError(
            429, "Too many invalid codes; wait before trying again.", retry_after=retry
        )


def record_failure(db: Session, user: User) -> None:
    db.add(RedemptionAttempt(user_id=user.id, attempted_at=now()))
    db.commit()  # kept even though the request itself fails


def redeem(db: Session, code: str, user: User, settings: Settings) -> Redeemed:
    check_rate_limit(db, user, settings)
    invitation = db.scalar(select(Invitation).where(Invitation.code_hash == hash_code(code)))
    if invitation is None:
        record_failure(db, user)
        raise ServiceError(404, "This code is not valid. Check it, or ask for a new one.")
    status = invitation.status()
    if status != "pending":
        record_failure(db, user)
        raise ServiceError(410, f"This invitation is {status}; ask for a new one.")
    patient = db.get(Patient, invitation.patient_id)
    assert patient is not None
    if patient.user_id == user.id:
        raise ServiceError(409, "This invitation is for someone else to accept.")
    if invitation.kind == "self_link":
        _check_can_link(db, patient, user)
    elif _active_grant(db, patient.id, user.id) is not None:
        raise ServiceError(409, "You already have access to this patient.")
    _claim(db, invitation, user)
    if invitation.kind == "self_link":
        patient.user_id = user.id
        user.copy_profile_from(patient)
        db.flush()
        return Redeemed(invitation, None)
    grant = CaregiverGrant(
        patient_id=patient.id,
        caregiver_user_id=user.id,
        relationship=invitation.relationship,
        permissions=list(invitation.permissions),
        granted_by_user_id=invitation.created_by_user_id,
        invitation_id=invitation.id,
        created_at=now(),
        ends_at=invitation.grant_ends_at,
    )
    db.add(grant)
    if user.display_name is None and invitation.invitee_name:
        # A sign-in without a name would show as "user" in the patient's caregiver list and
        # access log; the name the patient gave the invitation is the better label.
        user.display_name = invitation.invitee_name
    db.flush()
    return Redeemed(invitation, grant)


def _claim(db: Session, invitation: Invitation, user: User) -> None:
    # Conditional UPDATE: of two people redeeming at once, exactly one wins.
    at = now()
    result = db.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.redeemed_at.is_(None),
            Invitation.cancelled_at.is_(None),
            Invitation.expires_at > at,
        )
        .values(redeemed_at=at, redeemed_by_user_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ServiceError(410, "This invitation has just been used; ask for a new one.")
    db.refresh(invitation)


def _check_can_link(db: Session, patient: Patient, user: User) -> None:
    if patient.user_id is not None:
        raise ServiceError(409, "This patient record is already linked to a login.")
    if db.scalar(select(Patient.id).where(Patient.user_id == user.id)) is not None:
        raise ServiceError(409, "Your login already has its own patient record.")
    if _active_grant(db, patient.id, user.id) is not None:
        raise ServiceError(409, "This code is for the patient to link their own login.")


def _active_grant(db: Session, patient_id: int, user_id: int) -> CaregiverGrant | None:
    return db.scalar(
        select(CaregiverGrant).where(
            CaregiverGrant.patient_id == patient_id,
            CaregiverGrant.caregiver_user_id == user_id,
            CaregiverGrant.active_clause(now()),
        )
    )
