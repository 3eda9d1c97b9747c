"""Medications, their schedules (FHIR R4 Timing JSON, kept as given) and the dose log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

MEDICATION_STATUSES = ("active", "paused", "stopped")
TZ_POLICIES = ("local", "home")


class Medication(Base):
    __tablename__ = "medications"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The medicine's code as a FHIR CodeableConcept (e.g. RxNorm), as imported; None when
    # typed by hand (the name is then the text).
    code: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    strength: Mapped[str | None] = mapped_column(String(100))
    form: Mapped[str | None] = mapped_column(String(60))
    route: Mapped[str | None] = mapped_column(String(60))
    instructions: Mapped[str | None] = mapped_column(Text)
    prescriber: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(300))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="active")
    time_critical: Mapped[bool] = mapped_column(Boolean, default=False)
    # The schedule as FHIR R4 Timing JSON, exactly as the client sent it (None: PRN only).
    timing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    as_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    prn_max_per_24h: Mapped[int | None] = mapped_column()
    prn_min_interval_minutes: Mapped[int | None] = mapped_column()
    tz_policy: Mapped[str] = mapped_column(String(10), default="local")
    # The zone the schedule was set in; "home" policy keeps this zone's instants.
    home_time_zone: Mapped[str] = mapped_column(String(64))
    quantity_on_hand: Mapped[float | None] = mapped_column(Float)
    dose_amount: Mapped[float] = mapped_column(Float, default=1.0)
    refill_threshold_days: Mapped[int | None] = mapped_column()
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class DoseLog(Base):
    """One report that a dose was taken or skipped. Undone rows are kept for the record."""

    __tablename__ = "dose_logs"
    __table_args__ = (
        # The phone's own id for the log: sending it again returns the same record.
        UniqueConstraint("patient_id", "client_id"),
        Index("ix_dose_logs_medication_taken", "medication_id", "taken_at"),
        # With the one above, a window on taken_at OR scheduled_at is two index range scans.
        Index("ix_dose_logs_medication_scheduled", "medication_id", "scheduled_at"),
        # Live slot logs, covering what the panel's adherence counts read (index-only scans
        # on PostgreSQL; backend/services/adherence_counts).
        Index(
            "ix_dose_logs_live_slots",
            "medication_id",
            "scheduled_at",
            postgresql_include=["slot_key", "status", "late"],
            postgresql_where=text("undone_at IS NULL"),
            sqlite_where=text("undone_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    medication_id: Mapped[int] = mapped_column(ForeignKey("medications.id"))
    client_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # taken | skipped
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    slot_key: Mapped[str | None] = mapped_column(String(80))  # None: extra or PRN dose
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    skip_reason: Mapped[str | None] = mapped_column(String(300))
    over_limit: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    @property
    def is_live(self) -> bool:
        return self.undone_at is None
