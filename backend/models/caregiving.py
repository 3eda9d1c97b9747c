"""Caregiver access by consent: invitations, grants with granular permissions."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, and_, or_
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from backend.clock import now
from backend.db import Base, UTCDateTime


class Permission(enum.StrEnum):
    VIEW_CARE_PLAN = "view_care_plan"
    VIEW_MEDICATIONS = "view_medications"
    LOG_DOSES = "log_doses"
    MANAGE_MEDICATIONS = "manage_medications"
    VIEW_APPOINTMENTS = "view_appointments"
    MANAGE_APPOINTMENTS = "manage_appointments"
    VIEW_CHECKINS = "view_checkins"
    RECEIVE_MISSED_DOSE_ALERTS = "receive_missed_dose_alerts"
    MESSAGE_CARE_TEAM = "message_care_team"


ALL_PERMISSIONS = tuple(p.value for p in Permission)
RELATIONSHIPS = (
    "spouse",
    "partner",
    "daughter",
    "son",
    "child",
    "parent",
    "sibling",
    "grandchild",
    "other_relative",
    "friend",
    "neighbour",
    "paid_carer",
    "legal_guardian",
    "other",
)


def hash_code(code: str) -> str:
    # Codes carry >= 128 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class CaregiverGrant(Base):
    """One caregiver's access to one patient. Ended grants are kept for the record."""

    __tablename__ = "caregiver_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    caregiver_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(40))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_managing: Mapped[bool] = mapped_column(Boolean, default=False)
    granted_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))  # revoked | left
    ended_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def status(self, at: datetime | None = None) -> str:
        at = at or now()
        if self.ended_at is not None:
            return self.end_reason or "revoked"
        if self.ends_at is not None and self.ends_at <= at:
            return "lapsed"
        return "active"

    def is_active(self, at: datetime | None = None) -> bool:
        return self.status(at) == "active"

    def allows(self, permission: Permission) -> bool:
        """What this grant lets its caregiver see or hear (the rule: :func:`grant_allows`)."""
        return grant_allows(self.is_managing, self.permissions, permission)

    def end(self, by_user_id: int, reason: str) -> None:
        self.ended_at = now()
        self.end_reason = reason
        self.ended_by_user_id = by_user_id

    @classmethod
    def active_clause(cls, at: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
        return and_(cls.ended_at.is_(None), or_(cls.ends_at.is_(None), cls.ends_at > at))


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "caregiver": redeeming grants access; "self_link": a managed patient's own login
    # claims the record.
    kind: Mapped[str] = mapped_column(String(20), default="caregiver")
    relationship: Mapped[str] = mapped_column(String(40))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    invitee_name: Mapped[str | None] = mapped_column(String(200))
    grant_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def status(self, at: datetime | None = None) -> str:
        at = at or now()
        if self.redeemed_at is not None:
            return "redeemed"
        if self.cancelled_at is not None:
            return "cancelled"
        if self.expires_at <= at:
            return "expired"
        return "pending"


class RedemptionAttempt(Base):
    """Failed invitation-code attempts, counted per user for rate limiting."""

    __tablename__ = "redemption_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


def grant_allows(is_managing: bool, permissions: list[str] | None, permission: Permission) -> bool:
    """A managing caregiver holds every permission; anyone else those granted. The one rule,
    for the access policy and for who hears what (``backend.reminders.audience``)."""
    return is_managing or permission.value in (permissions or [])
