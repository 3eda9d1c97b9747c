"""Who gives the doses: who receives a patient's on-time dose reminder and its follow-up.

One row per patient (``medication_id`` None) and per medicine whose setting differs. No row:
the default (the patient's own login; for a managed patient, the managing caregivers). The
rule that reads them is ``backend.reminders.audience.Circle.givers``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

# Who receives the on-time dose reminder and its follow-up.
GIVER_MODES = ("patient", "caregivers", "both")


class DoseGivers(Base):
    """A patient's setting (``medication_id`` None) or one medicine's override."""

    __tablename__ = "dose_givers"
    __table_args__ = (
        UniqueConstraint("patient_id", "medication_id"),
        # The constraint above never sees the patient-wide setting: NULLs are distinct.
        Index(
            "uq_dose_givers_patient_id_all_medicines",
            "patient_id",
            unique=True,
            sqlite_where=text("medication_id IS NULL"),
            postgresql_where=text("medication_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    medication_id: Mapped[int | None] = mapped_column(ForeignKey("medications.id"))
    receives: Mapped[str] = mapped_column(String(12))
    # The chosen caregivers (user ids), each holding log_doses when chosen; one who no longer
    # does is skipped when reminders are planned and sent.
    caregiver_user_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
