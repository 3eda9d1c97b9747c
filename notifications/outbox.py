"""The outbox: one row per "tell user U about X at T", and one delivery row per device try.

A reminder moves through these states (only the dispatcher moves it past ``pending``)::

    pending --claim--> claimed --> sent | pending (transient error, later) | failed
       |                  \\--> expired (past not_after) | cancelled (no longer matters)
       +--> cancelled (cancel(): dose logged, appointment moved, access revoked)
       +--> expired (the sweep: past not_after before anyone claimed it)

``dedupe_key`` is unique, so enqueueing the same thing twice creates one row (planning twice
creates nothing twice). ``cancel`` only touches ``pending`` rows: a reminder already claimed
is in flight and cannot be called back. A row cancelled by a re-plan (``replanned``) goes
back to ``pending`` when the planner plans its key again; ``recancel`` turns another reason
into that one when its cause went away (a dose log undone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    func,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from backend.clock import now
from backend.db import Base, UTCDateTime

KINDS = (
    "dose",
    "dose_followup",
    "missed_dose_alert",
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
        # The dispatcher's one hot query: pending rows whose next attempt is due.
        Index("ix_reminders_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
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


def _insert(db: Session) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(Reminder)


def enqueue(
    db: Session,
    *,
    dedupe_key: str,
    kind: str,
    user_id: int,
    due_at: datetime,
    not_after: datetime,
    patient_id: int | None = None,
    subject: Mapping[str, Any] | None = None,
) -> Reminder | None:
    """Add a reminder unless one with ``dedupe_key`` exists; returns the new row or None.

    Runs in the caller's transaction, so a planner can enqueue together with the change
    that caused it. The INSERT ignores a conflicting key instead of failing, so two
    planners racing on the same key both succeed and one row results.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown reminder kind {kind!r}")
    if not_after < due_at:
        raise ValueError("not_after is before due_at")
    stmt = (
        _insert(db)
        .values(
            dedupe_key=dedupe_key,
            kind=kind,
            user_id=user_id,
            patient_id=patient_id,
            subject=dict(subject or {}),
            due_at=due_at,
            not_after=not_after,
            state="pending",
            attempts=0,
            next_attempt_at=due_at,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Reminder.id)
    )
    new_id = db.execute(stmt).scalar_one_or_none()
    return None if new_id is None else db.get(Reminder, new_id)


def _matching(
    *,
    ids: Iterable[int] | None = None,
    user_id: int | None = None,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    dedupe_prefix: str | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE terms of the filters :func:`cancel` and :func:`recancel` take (each given
    one must match); at least one is required."""
    where: list[ColumnElement[bool]] = []
    if ids is not None:
        where.append(Reminder.id.in_(list(ids)))
    if user_id is not None:
        where.append(Reminder.user_id == user_id)
    if patient_id is not None:
        where.append(Reminder.patient_id == patient_id)
    if kinds is not None:
        where.append(Reminder.kind.in_(list(kinds)))
    if dedupe_prefix is not None:
        escaped = dedupe_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Reminder.dedupe_key.like(escaped + "%", escape="\\"))
    for key, value in (subject or {}).items():
        field = Reminder.subject[key]
        where.append(
            field.as_integer() == value if isinstance(value, int) else field.as_string() == value
        )
    if due_from is not None:
        where.append(Reminder.due_at >= due_from)
    if not where:
        raise ValueError("cancel() needs at least one filter")
    return where


def cancel(
    db: Session,
    *,
    reason: str,
    ids: Iterable[int] | None = None,
    user_id: int | None = None,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    dedupe_prefix: str | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> int:
    """Cancel the still-pending reminders matching every given filter; returns how many.

    A conditional UPDATE (``state = 'pending'``): a row a dispatcher has already claimed is
    left alone, it is in flight. At least one filter is required.
    """
    where = _matching(
        ids=ids,
        user_id=user_id,
        patient_id=patient_id,
        kinds=kinds,
        dedupe_prefix=dedupe_prefix,
        subject=subject,
        due_from=due_from,
    )
    stmt = (
        update(Reminder)
        .where(Reminder.state == "pending", and_(*where))
        .values(state="cancelled", cancelled_reason=reason[:60], lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], db.execute(stmt))
    return result.rowcount or 0


def recancel(
    db: Session,
    *,
    was: str,
    reason: str,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> int:
    """Give the rows cancelled for ``was`` and matching every filter the reason ``reason``
    instead; returns how many. A conditional UPDATE (``state = 'cancelled'`` and that
    reason): the row stays cancelled, only why changes -- the planner revives a row
    cancelled by a re-plan when it plans its key again (``notifications.planner``), so this
    is how a cause that went away (a dose log undone) hands its rows back to the planner.
    """
    where = _matching(patient_id=patient_id, kinds=kinds, subject=subject, due_from=due_from)
    stmt = (
        update(Reminder)
        .where(Reminder.state == "cancelled", Reminder.cancelled_reason == was, and_(*where))
        .values(cancelled_reason=reason[:60])
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], db.execute(stmt))
    return result.rowcount or 0


def counts_by_state(db: Session) -> dict[str, int]:
    rows = db.execute(
        Reminder.__table__.select()
        .with_only_columns(Reminder.state, func.count())
        .group_by(Reminder.state)
    ).all()
    return {state: n for state, n in rows}
