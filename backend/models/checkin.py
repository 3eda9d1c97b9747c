"""Check-in templates, the answers patients give to them, and patient-specific flag rules.

The built-in templates (PHQ-2, PHQ-9, GAD-7, SOCIAL-NEEDS, POST-DISCHARGE;
``backend/checkins/catalog``) need no row; ``checkin_templates`` holds the templates an
organization makes itself (never edited once made, so every stored answer keeps the meaning
it was given under). Every answered check-in is kept as a ``checkin_responses`` row: the
history, scored and checked against the flag rules once. ``patient_flag_rules`` are the care
team's rules for one patient, on top of the template's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


class CheckinTemplate(Base):
    """A custom template: its items as JSON, and whether a caregiver may answer for the
    patient."""

    __tablename__ = "checkin_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    flag_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    caregiver_may_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_from_caregivers: Mapped[bool] = mapped_column(Boolean, default=False)
    # The language title and items are written in, and complete translations by language
    # (backend.checkins.templates: title, every item's text and option displays).
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    translations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    def definition(self) -> dict[str, Any]:
        """The JSON definition ``backend.checkins.templates.parse_template`` reads."""
        return {
            "code": self.code,
            "title": self.title,
            "items": self.items,
            "flag_rules": self.flag_rules,
            "caregiver_may_answer": self.caregiver_may_answer,
            "hidden_from_caregivers": self.hidden_from_caregivers,
            "language": self.language,
            "translations": self.translations or {},
        }


class CheckinResponse(Base):
    """One answered check-in, scored when it was stored."""

    __tablename__ = "checkin_responses"
    __table_args__ = (Index("ix_checkin_responses_patient_id_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    template_code: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score: Mapped[int | None] = mapped_column()
    band: Mapped[str | None] = mapped_column(String(30))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The flag rules that fired: [{"rule", "flag", "urgent", "title", "work_item_id"}].
    raised: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answered_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    # The answerer's role then (self, caregiver, managing_caregiver, care_team); None on
    # answers stored before it was kept.
    answered_as: Mapped[str | None] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class PatientFlagRule(Base):
    """A care team's flag rule for one patient and template (``backend/checkins/rules``):
    adds to the template's rules, or replaces the one with the same name. Deleting one ends
    it (``active`` false) and keeps it, so the worklist items it raised stay explained."""

    __tablename__ = "patient_flag_rules"
    __table_args__ = (
        Index(
            "uq_patient_flag_rules_active_name",
            "patient_id",
            "template_code",
            "name",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    template_code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    care_plan_id: Mapped[int | None] = mapped_column(ForeignKey("care_plans.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
