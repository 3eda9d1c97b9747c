"""Organizations, their care teams, team members and the patients enrolled on them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Select,
    String,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from backend.clock import now
from backend.db import Base, UTCDateTime


class TeamRole(enum.StrEnum):
    PHYSICIAN = "physician"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    DIETITIAN = "dietitian"
    SOCIAL_WORKER = "social_worker"
    COMMUNITY_HEALTH_WORKER = "community_health_worker"
    CARE_COORDINATOR = "care_coordinator"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Crisis guidance shown with a safety flag, by language ("en", "es"); None or a missing
    # language falls back to the US default (backend/checkins/crisis.py).
    crisis_guidance: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CareTeam(Base):
    __tablename__ = "care_teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class CareTeamMember(Base):
    __tablename__ = "care_team_members"
    __table_args__ = (UniqueConstraint("care_team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    care_team_id: Mapped[int] = mapped_column(ForeignKey("care_teams.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    # The team's admin manages its members and enrolments (any clinical role may be one).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def active_clause(cls) -> ColumnElement[bool]:
        """Still on the team (not removed)."""
        return cls.removed_at.is_(None)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("care_team_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    care_team_id: Mapped[int] = mapped_column(ForeignKey("care_teams.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def active_clause(cls) -> ColumnElement[bool]:
        """Still enrolled (not ended)."""
        return cls.ended_at.is_(None)


TEAM_CHANGES = (
    "member_added",
    "member_changed",
    "member_removed",
    "patient_enrolled",
    "enrollment_ended",
)


class CareTeamChange(Base):
    """One change to a team's members or enrolments: who did it (None: the operator's CLI),
    to whom, when. Members read the trail; the patient's own side is in their access log."""

    __tablename__ = "care_team_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    care_team_id: Mapped[int] = mapped_column(ForeignKey("care_teams.id"), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    member_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    detail: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


def care_team_rows() -> Select[int, int, str]:
    """(patient id, member user id, member role) for every active member of every team a
    patient is actively enrolled on: the one definition of "on the patient's care team";
    callers narrow it with ``.where(...)``."""
    return (
        select(Enrollment.patient_id, CareTeamMember.user_id, CareTeamMember.role)
        .join(CareTeamMember, CareTeamMember.care_team_id == Enrollment.care_team_id)
        .where(Enrollment.active_clause(), CareTeamMember.active_clause())
    )
