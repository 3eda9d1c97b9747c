"""A person's private calendar feed: one secret URL per person, stored as its hash.

The secret is shown once (when made or rotated) and never stored: the row keeps its
SHA-256, and a fetch finds the feed by hashing what it was given (an index lookup on the
hash, so no comparison runs on the secret itself). Rotating replaces the hash; revoking
deletes the row; either way the old URL finds nothing at once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Privacy by default: lock-screen titles, no place, no notes, no medicine names.
    show_details: Mapped[bool] = mapped_column(Boolean, default=False)
    include_doses: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
