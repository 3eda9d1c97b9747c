"""The coordinators' worklist: one ``work_items`` row per thing about a patient that needs a
person (a worrying answer, missed doses, a discharge without a follow-up), and one
``work_item_events`` row per thing that happened to it (the audit trail).

An item is ``open``, then ``acknowledged`` (someone is on it), then ``resolved`` with a note.
``key`` says what the item is about (``checkin:42:safety``, ``missed_doses``); at most one
unresolved item per (patient, key) is held by a partial unique index, so a rule that fires
again while its item is still open updates that item instead of adding a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

# What raised the item. Each producer owns its kinds:
#   backend/checkins (answers): safety, checkin_flag, social_need
#   computed rules (backend/flags): missed_doses, low_adherence, checkin_overdue
#   care transitions: transition_task, no_follow_up, encounter
#   dose logs (backend/services/prn): prn_over_limit
WORK_ITEM_KINDS = (
    "safety",
    "checkin_flag",
    "social_need",
    "missed_doses",
    "low_adherence",
    "checkin_overdue",
    "transition_task",
    "no_follow_up",
    "encounter",
    "prn_over_limit",
)
STATUSES = ("open", "acknowledged", "resolved")
# What an item's trail records (services/worklist.py writes each).
EVENT_ACTIONS = ("opened", "updated", "acknowledged", "assigned", "resolved")
UNRESOLVED = ("open", "acknowledged")


class WorkItem(Base):
    __tablename__ = "work_items"
    __table_args__ = (
        Index(
            "uq_work_items_unresolved_patient_key",
            "patient_id",
            "key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(200))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    # A short line for the coordinator ("PHQ-9 item 9 answered 'Several days'").
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(15), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # The newest evidence behind the item (the answer, the last missed dose); an item that
    # was resolved is raised again only by evidence newer than its resolution.
    evidence_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    assigned_to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    acknowledged_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(Text)


# The worklist query in the list's own order, unresolved only: a page is read off the index
# and the scan stops once the page is full, instead of sorting every item of the panel.
Index(
    "ix_work_items_unresolved_queue",
    WorkItem.urgent.desc(),
    WorkItem.opened_at,
    WorkItem.id,
    sqlite_where=text("status != 'resolved'"),
    postgresql_where=text("status != 'resolved'"),
)


class WorkItemEvent(Base):
    """The audit trail of an item: opened, updated (the rule fired again), acknowledged,
    assigned, resolved; ``user_id`` is None when the system did it."""

    __tablename__ = "work_item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
