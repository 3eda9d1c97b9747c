"""The person being cared for. May have their own login (``user_id``) or be managed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime
from backend.models.profile import ProfileMixin


class Patient(ProfileMixin, Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # Bumped by every transaction that changes what the patient's today view shows
    # (backend/models/today_cache.py); never set by hand.
    today_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Bumped when something a settled day's adherence depends on changes (a dose logged late,
    # undone or corrected, a medicine, the zone or routine): the stored day tallies of an
    # older version are stale (backend/services/adherence_snapshots.invalidate).
    adherence_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_managed(self) -> bool:
        return self.user_id is None
