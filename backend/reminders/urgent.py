"""Urgent work items: a push at once to every member of the patient's care teams.

Keyed ``work_item:{item}:{user}``; content-free text (the worklist has the detail). A push
for an item resolved before it went out is dropped by the dispatcher (:func:`urgent_check`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.outbox import Reminder
from backend.models.worklist import WorkItem
from backend.reminders.audience import care_team_user_ids
from notifications.outbox import enqueue

# An urgent push older than this is no longer "at once": the worklist shows it instead.
URGENT_PUSH_WINDOW = timedelta(hours=2)


def push_urgent(db: Session, item: WorkItem, at: datetime) -> int:
    """Queue an ``urgent_flag`` push to each member of the patient's care teams."""
    members = care_team_user_ids(db, [item.patient_id]).get(item.patient_id, set())
    queued = 0
    for user_id in sorted(members):
        row = enqueue(
            db,
            dedupe_key=f"work_item:{item.id}:{user_id}",
            kind="urgent_flag",
            user_id=user_id,
            patient_id=item.patient_id,
            subject={"work_item_id": item.id},
            due_at=at,
            not_after=at + URGENT_PUSH_WINDOW,
        )
        queued += row is not None
    return queued


def urgent_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """Dispatcher relevance check: an urgent push about an item already resolved is dropped."""
    ids = {int((r.subject or {}).get("work_item_id", 0)) for r in reminders}
    resolved = set(
        db.scalars(select(WorkItem.id).where(WorkItem.id.in_(ids), WorkItem.status == "resolved"))
    )
    return {
        r.id: "resolved"
        for r in reminders
        if int((r.subject or {}).get("work_item_id", 0)) in resolved
    }
