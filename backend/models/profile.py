"""Personal preferences shared by a user (their own settings) and a patient record.

A managed patient (a child, a parent with dementia) has no login, so the things that shape
their schedules and messages -- language, zone, daily routine -- live on the patient too.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from sqlalchemy import JSON, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column

SUPPORTED_LANGUAGES = ("en", "es")
NEED_FLAGS = (
    "needs_interpreter",
    "large_text",
    "screen_reader",
    "hearing_impaired",
    "low_literacy",
    "prefers_voice_call",
    "cognitive_impairment",
)
ROUTINE_FIELDS = ("wake_time", "breakfast_time", "lunch_time", "dinner_time", "bed_time")
PROFILE_FIELDS = (
    "language",
    "time_zone",
    *ROUTINE_FIELDS,
    "communication_needs",
    "need_flags",
)


class ProfileMixin:
    language: Mapped[str] = mapped_column(String(35), default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    wake_time: Mapped[time] = mapped_column(Time, default=time(7, 0))
    breakfast_time: Mapped[time] = mapped_column(Time, default=time(8, 0))
    lunch_time: Mapped[time] = mapped_column(Time, default=time(12, 30))
    dinner_time: Mapped[time] = mapped_column(Time, default=time(18, 30))
    bed_time: Mapped[time] = mapped_column(Time, default=time(22, 0))
    communication_needs: Mapped[str | None] = mapped_column(Text)
    need_flags: Mapped[list[str]] = mapped_column(JSON, default=list)

    def copy_profile_from(self, other: ProfileMixin, fields: Any = PROFILE_FIELDS) -> None:
        for name in fields:
            setattr(self, name, getattr(other, name))
