"""Appointments and their history.

A reschedule moves the same row to its new time (status stays ``booked``) and writes a
``rescheduled`` history row holding the old and the new times. One appointment keeps one
id for its whole life, so links, pushes already delivered and the reminders planned for it
(keyed by appointment id, issue 5) never point at a stale copy; the old time is in the
history. There is therefore no stored status "rescheduled": a status says what the
appointment is now, and a moved appointment is still booked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

APPOINTMENT_TYPES = ("in_person", "telehealth", "home_visit", "lab")
APPOINTMENT_STATUSES = ("booked", "cancelled", "completed", "no_show")
# What can be recorded once the appointment has started (PATCH status).
OUTCOMES = ("completed", "no_show")
HISTORY_KINDS = ("created", "rescheduled", "cancelled", "status", "edited")
# One day and two hours before, as the product card says.
DEFAULT_LEAD_MINUTES = (1440, 120)
MIN_LEAD_MINUTES = 5  # closer than this the reminder arrives while they are leaving
MAX_LEAD_MINUTES = 14 * 24 * 60  # two weeks ahead is the longest useful notice
MAX_LEADS = 5


def moment(instant: datetime, zone: str) -> str:
    """RFC 3339 with the offset ``zone`` has at that instant."""
    return instant.astimezone(ZoneInfo(zone)).isoformat()


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint(_in("type", APPOINTMENT_TYPES), name="type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    title: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    provider_name: Mapped[str | None] = mapped_column(String(200))
    # A member of the patient's care team (checked when set), e.g. the nurse's home visit.
    provider_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    location: Mapped[str | None] = mapped_column(String(500))
    video_url: Mapped[str | None] = mapped_column(String(2000))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The IANA zone the times are expressed in; the API shows start/end with its offset.
    time_zone: Mapped[str] = mapped_column(String(64))
    preparation_notes: Mapped[str | None] = mapped_column(Text)
    transport_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The caregiver who goes along (checked when set: an active grant on the patient).
    attendee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="booked")
    reminder_lead_minutes: Mapped[list[int]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_LEAD_MINUTES)
    )
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # Bumped by every UPDATE, which matches only the version it read: of two people who
    # cancel and reschedule at the same moment, the second finds nothing to change (409).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # RFC 5545 SEQUENCE of the appointment's calendar event: bumped by the changes a
    # calendar must not miss (RFC 5546 §2.1.4: a new time, a cancellation), not by edits.
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_booked(self) -> bool:
        return self.status == "booked"

    def has_started(self, at: datetime | None = None) -> bool:
        return self.start_at <= (at or now())

    def when(self) -> dict[str, str]:
        """Start, end and zone as the API shows them; what history rows keep."""
        return when(self.start_at, self.end_at, self.time_zone)


def when(start: datetime, end: datetime, zone: str) -> dict[str, str]:
    return {"start": moment(start, zone), "end": moment(end, zone), "time_zone": zone}


class AppointmentEvent(Base):
    """One change to an appointment: who, when, what kind, and the values before and after."""

    __tablename__ = "appointment_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    from_value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    to_value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))
