"""Escalation chains as the patient set them, and "I'm on it" acknowledgements of a dose.

The rules that read them (default chains, who each step reaches) are in
``backend.reminders.escalation``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


class EscalationChain(Base):
    """A patient's chain (``medication_id`` None) or one medicine's override."""

    __tablename__ = "escalation_chains"
    __table_args__ = (
        UniqueConstraint("patient_id", "medication_id"),
        # The constraint above never sees the patient-wide chain: NULLs are distinct.
        Index(
            "uq_escalation_chains_patient_id_all_medicines",
            "patient_id",
            unique=True,
            sqlite_where=text("medication_id IS NULL"),
            postgresql_where=text("medication_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    medication_id: Mapped[int | None] = mapped_column(ForeignKey("medications.id"))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class DoseAcknowledgement(Base):
    """ "I'm on it": the caregiver who took a missed dose in hand. One per dose."""

    __tablename__ = "dose_acknowledgements"
    __table_args__ = (UniqueConstraint("medication_id", "slot_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    medication_id: Mapped[int] = mapped_column(ForeignKey("medications.id"))
    slot_key: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reminder_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
