"""Check-in templates, the answers patients give to them, and patient-specific flag rules.

The built-in templates (PHQ-2, PHQ-9, GAD-7, SOCIAL-NEEDS, POST-DISCHARGE;
``backend/checkins/catalog``) need no row; ``checkin_templates`` holds the templates an
organization makes itself (never edited once made, so every stored answer keeps the meaning
it was given under).

A template is named by :class:`TemplateKey`: a built-in by its code alone (codes of the
built-ins are reserved everywhere), an organization's own by (organization, code). Codes are
unique within an organization only, so one organization's codes say nothing about another's,
and a patient enrolled with two organizations that both have a ``HF-DAILY`` has two distinct
templates: every row that refers to a template (answers, schedules, a patient's flag rules)
carries both columns (:class:`TemplateRef`).

Every answered check-in is kept as a ``checkin_responses`` row: the history, scored and
checked against the flag rules once. ``patient_flag_rules`` are the care team's rules for one
patient, on top of the template's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


class TemplateKey(NamedTuple):
    """Which template: ``organization_id`` None for a built-in."""

    organization_id: int | None
    code: str


class TemplateRef:
    """The columns of a row that refers to a template, and how to select by one."""

    template_code: Mapped[str] = mapped_column(String(40))
    # None: a built-in (its code is reserved); else the organization whose template it is.
    template_organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id"), index=True
    )

    @property
    def template_key(self) -> TemplateKey:
        return TemplateKey(self.template_organization_id, self.template_code)

    @classmethod
    def of_template(cls, key: TemplateKey) -> ColumnElement[bool]:
        org = cls.template_organization_id
        return (cls.template_code == key.code) & (
            org.is_(None) if key.organization_id is None else org == key.organization_id
        )


class CheckinTemplate(Base):
    """A custom template: its items as JSON, and whether a caregiver may answer for the
    patient. Its code is unique within its organization."""

    __tablename__ = "checkin_templates"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
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

    @property
    def key(self) -> TemplateKey:
        return TemplateKey(self.organization_id, self.code)

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


class CheckinResponse(TemplateRef, Base):
    """One answered check-in, scored when it was stored."""

    __tablename__ = "checkin_responses"
    __table_args__ = (Index("ix_checkin_responses_patient_id_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
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


# One active rule per (patient, template, name). Two partial indexes rather than one: a
# unique index treats NULLs as distinct, so a built-in's rules (no organization) need their own.
_BUILTIN = "active AND template_organization_id IS NULL"
_CUSTOM = "active AND template_organization_id IS NOT NULL"


class PatientFlagRule(TemplateRef, Base):
    """A care team's flag rule for one patient and template (``backend/checkins/rules``):
    adds to the template's rules, or replaces the one with the same name. Deleting one ends
    it (``active`` false) and keeps it, so the worklist items it raised stay explained."""

    __tablename__ = "patient_flag_rules"
    __table_args__ = (
        Index(
            "uq_patient_flag_rules_active_builtin_name",
            "patient_id",
            "template_code",
            "name",
            unique=True,
            sqlite_where=text(_BUILTIN),
            postgresql_where=text(_BUILTIN),
        ),
        Index(
            "uq_patient_flag_rules_active_org_name",
            "patient_id",
            "template_organization_id",
            "template_code",
            "name",
            unique=True,
            sqlite_where=text(_CUSTOM),
            postgresql_where=text(_CUSTOM),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    care_plan_id: Mapped[int | None] = mapped_column(ForeignKey("care_plans.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
