"""Check-in templates and the answers patients give to them.

The standard screeners (PHQ-2, PHQ-9, GAD-7) are built in (``backend/checkins/instruments``)
and need no row; ``checkin_templates`` holds the templates an organization makes itself.
Every answered check-in is kept as a ``checkin_responses`` row: the history, scored once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
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
    caregiver_may_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


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
    answered_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
