"""The outbox's tables: one row per "tell user U about X at T" (``reminders``) and one per
device try (``deliveries``). ``notifications.outbox`` is their only writer; the states and
their moves are described there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

REMINDER_KINDS = (
    "dose",
    "dose_followup",
    "missed_dose_alert",
    "alert_taken",
    "prn_over_limit",
    "appointment",
    "refill",
    "device_health",
    "summary",
    "message",
    "urgent_flag",
    "checkin_prompt",
)
STATES = ("pending", "claimed", "sent", "cancelled", "expired", "failed")
FINAL_STATES = ("sent", "cancelled", "expired", "failed")


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (
        # The dispatcher's one hot query (and the sweep, and the oldest due): pending rows
        # whose next attempt is due. Partial: a row leaves it when it is sent or cancelled,
        # and each planned row costs one narrower entry (migration a9b0c1d2e3f4).
        Index(
            "ix_reminders_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # Leases run out on claimed rows only: a few at any time.
        Index(
            "ix_reminders_claimed_lease_expires_at",
            "lease_expires_at",
            postgresql_where=text("state = 'claimed'"),
            sqlite_where=text("state = 'claimed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Byte order ("C") on PostgreSQL: the planner inserts a million keys into this unique
    # index a run, and the database's default collation (a libc locale, even C.UTF-8)
    # compares each pair through strcoll (migration f8a9b0c1d2e3). Nothing sorts by key for
    # a person to read; a LIKE on a key prefix can use the index only under "C".
    dedupe_key: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    # users.id and patients.id, without foreign keys: the planner writes a million rows a
    # run, and the constraints' look-up and row lock per row cost as much as the insert
    # (migration d2e3f4a5b6c7); the planner writes ids it has just read, and neither users
    # nor patients are ever deleted.
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    patient_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Ids of what the reminder is about (medication_id, slot_key, appointment_id, ...):
    # used by relevance checks, texts and the push's deep-link data.
    subject: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The lateness limit: after this instant the reminder is useless and is expired.
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_reason: Mapped[str | None] = mapped_column(String(60))


class Delivery(Base):
    """One try of one reminder to one device: FCM's message id, or its error."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), index=True)
    # SET NULL: a device row is deleted when its token moves to another install; the
    # delivery history of the reminder stays.
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    fcm_message_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(40))
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
