"""A person who signs in (Firebase uid) -- patient, caregiver or care-team member."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Boolean, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime
from backend.models.profile import ProfileMixin


class User(ProfileMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    firebase_uid: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    preferred_name: Mapped[str | None] = mapped_column(String(100))
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    # Lock-screen privacy: medication names only when the person opted in.
    show_details_on_lock_screen: Mapped[bool] = mapped_column(Boolean, default=False)
    # Opt-in "you have N things today" push, at this local time (None: the wake time).
    morning_summary: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    morning_summary_time: Mapped[time | None] = mapped_column(Time)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def name(self) -> str:
        return self.preferred_name or self.display_name or self.email or "user"
