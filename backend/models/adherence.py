"""Adherence snapshots: a patient's overall adherence tally over the last 7, 30 or 90 local
days as computed at ``computed_at`` (``backend/services/adherence``), one row per (patient,
days).

The worklist sweep writes the 7- and 30-day ones for every enrolled patient it computes
(every 15 minutes); the care team's panel (``GET /care-teams/{id}/adherence``) reads them
when they are fresh enough and computes and stores the others. Logging, correcting or undoing
a dose, or changing a medicine or the patient's zone or routine, deletes the patient's rows
in the same transaction (``backend/services/adherence_snapshots``). A row is a cache: losing
one costs a recomputation, never a wrong answer.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Integer, SmallInteger, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base, UTCDateTime


class AdherenceSnapshot(Base):
    __tablename__ = "adherence_snapshots"
    __table_args__ = (UniqueConstraint("patient_id", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    days: Mapped[int] = mapped_column(SmallInteger)  # 7, 30 or 90
    # The instant the tally is for (its window ends there); the sweep's, or the request's.
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Tally.as_dict(), one column each (the panel sorts on dose_adherence, pdc, missed)
    scheduled: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    missed: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)
    days_with_doses: Mapped[int] = mapped_column(Integer)
    days_covered: Mapped[int] = mapped_column(Integer)
    dose_adherence: Mapped[float | None] = mapped_column(Float)
    pdc: Mapped[float | None] = mapped_column(Float)


# The columns holding Tally.as_dict(), in its order.
TALLY_COLUMNS = (
    "scheduled",
    "taken",
    "late",
    "skipped",
    "missed",
    "pending",
    "days_with_doses",
    "days_covered",
    "dose_adherence",
    "pdc",
)


class AdherenceDay(Base):
    """A patient's settled dosing day (``Occurrence.local_date``): every slot of it more than
    ``MISSED_AFTER`` past when counted, so only a change can alter it, and every change that
    can bumps ``patients.adherence_version``. Used only while ``version`` equals it
    (``backend/services/adherence_counts``). A day with no slot has a row with zero counts
    and no instants (nothing to expand again)."""

    __tablename__ = "adherence_days"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    scheduled: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer)
    late: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    covered: Mapped[bool] = mapped_column(Boolean)  # every slot of the day taken
    # The day's first and last slot (they may lie on other local dates: a home zone, a
    # bedtime after midnight); a window counts the row only when it holds both.
    first_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
