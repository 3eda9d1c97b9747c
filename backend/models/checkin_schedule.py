"""Check-in schedules: a coordinator asks a patient to answer a template once or repeatedly.

The schedule is a FHIR R4 ``Timing`` (the same shape and engine as medications) anchored at
``starts_at``; each occurrence is a prompt that stays answerable for ``answer_within_minutes``
and is overdue after that. Nothing is due at or after ``expires_at``. A cancelled schedule
keeps its row (and its history of occurrences).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime
from backend.models.checkin import TemplateRef

SCHEDULE_STATUSES = ("active", "cancelled")


class CheckinSchedule(TemplateRef, Base):
    __tablename__ = "checkin_schedules"
    __table_args__ = (
        # The planner's and the sweep's query: a batch of patients' active schedules.
        Index("ix_checkin_schedules_patient_id_status", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    # FHIR R4 Timing JSON, exactly as the client sent it.
    timing: Mapped[dict[str, Any]] = mapped_column(JSON)
    tz_policy: Mapped[str] = mapped_column(String(10), default="local")
    # The zone the schedule was set in; "home" policy keeps this zone's instants.
    home_time_zone: Mapped[str] = mapped_column(String(64))
    # The Timing's anchor: nothing before it; "once" (count 1) is at this instant.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answer_within_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="active")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def answer_within(self) -> timedelta:
        return timedelta(minutes=self.answer_within_minutes)

    def state_at(self, at: datetime) -> str:
        """active, cancelled, or expired (active but past ``expires_at``)."""
        if self.status == "cancelled":
            return "cancelled"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"
