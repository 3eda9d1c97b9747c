"""Raising and working worklist items (``backend/models/worklist``).

Producers call :func:`raise_work_item` inside their own transaction (an answer stored, a rule
swept); the coordinator's actions (acknowledge, assign, resolve) go through the functions
below so every one leaves a :class:`WorkItemEvent`. An urgent item pushes at once to every
member of the patient's care teams through the outbox: the push says only that a patient
needs attention, never who or why (it shows on a lock screen).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.clock import now
from backend.models.worklist import UNRESOLVED, WORK_ITEM_KINDS, WorkItem, WorkItemEvent
from backend.reminders.urgent import push_urgent


def _event(
    db: Session,
    item: WorkItem,
    action: str,
    user_id: int | None,
    at: datetime,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    db.add(
        WorkItemEvent(
            work_item_id=item.id,
            action=action,
            user_id=user_id,
            note=note,
            detail=detail or {},
            at=at,
        )
    )


def patients_with_unresolved(db: Session, patient_ids: Iterable[int], key: str) -> set[int]:
    """Which of these patients have an unresolved item with this key (one query): a sweep
    rule needs to close only those, not look up every patient it found well."""
    return set(
        db.scalars(
            select(WorkItem.patient_id).where(
                WorkItem.patient_id.in_(list(patient_ids)),
                WorkItem.key == key,
                WorkItem.status.in_(UNRESOLVED),
            )
        )
    )


def unresolved(db: Session, patient_id: int, key: str) -> WorkItem | None:
    return db.scalar(
        select(WorkItem).where(
            WorkItem.patient_id == patient_id,
            WorkItem.key == key,
            WorkItem.status.in_(UNRESOLVED),
        )
    )


def raise_work_item(
    db: Session,
    *,
    patient_id: int,
    kind: str,
    key: str,
    title: str,
    urgent: bool = False,
    detail: dict[str, Any] | None = None,
    evidence_at: datetime | None = None,
    at: datetime | None = None,
) -> WorkItem | None:
    """Open an item, or refresh the unresolved one with the same key; returns it.

    Returns None when an item with this key was resolved after ``evidence_at``: the
    coordinator has already dealt with that evidence, and only something newer reopens it.
    """
    if kind not in WORK_ITEM_KINDS:
        raise ValueError(f"unknown worklist kind {kind!r}")
    at = at or now()
    evidence_at = evidence_at or at
    detail = detail or {}
    item = unresolved(db, patient_id, key)
    if item is not None:
        # The numbers are kept current; the trail records only new evidence.
        newer = evidence_at > item.evidence_at
        if item.detail != detail or item.title != title:
            item.title, item.detail, item.updated_at = title, detail, at
        if newer or (urgent and not item.urgent):
            item.evidence_at = max(item.evidence_at, evidence_at)
            item.urgent = item.urgent or urgent
            item.updated_at = at
            _event(db, item, "updated", None, at, detail={"evidence_at": evidence_at.isoformat()})
        return item
    handled = db.scalar(
        select(WorkItem.id)
        .where(
            WorkItem.patient_id == patient_id,
            WorkItem.key == key,
            WorkItem.status == "resolved",
            WorkItem.resolved_at >= evidence_at,
        )
        .limit(1)
    )
    if handled is not None:
        return None
    item = WorkItem(
        patient_id=patient_id,
        kind=kind,
        key=key,
        urgent=urgent,
        title=title,
        detail=detail,
        status="open",
        opened_at=at,
        evidence_at=evidence_at,
        updated_at=at,
    )
    try:
        with db.begin_nested():
            db.add(item)
            db.flush()
    except IntegrityError:
        # Someone raised the same key a moment ago; theirs stands.
        return unresolved(db, patient_id, key)
    _event(db, item, "opened", None, at, detail={"evidence_at": evidence_at.isoformat()})
    if urgent:
        push_urgent(db, item, at)
    return item


def acknowledge(db: Session, item: WorkItem, user_id: int) -> WorkItem:
    at = now()
    if item.status == "open":
        item.status = "acknowledged"
        item.acknowledged_by_user_id, item.acknowledged_at = user_id, at
        item.updated_at = at
        _event(db, item, "acknowledged", user_id, at)
    return item


def assign(db: Session, item: WorkItem, by_user_id: int, to_user_id: int) -> WorkItem:
    at = now()
    if item.assigned_to_user_id != to_user_id:
        item.assigned_to_user_id, item.updated_at = to_user_id, at
        _event(db, item, "assigned", by_user_id, at, detail={"assigned_to_user_id": to_user_id})
    return item


def resolve(db: Session, item: WorkItem, user_id: int, note: str) -> bool:
    """Resolve with a note; False when someone else resolved it first (the UPDATE is
    conditional, so of two coordinators closing the same item at once only one does)."""
    at = now()
    done = db.execute(
        update(WorkItem)
        .where(WorkItem.id == item.id, WorkItem.status != "resolved")
        .values(
            status="resolved",
            resolved_by_user_id=user_id,
            resolved_at=at,
            resolution_note=note,
            updated_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    db.refresh(item)
    if cast(CursorResult[Any], done).rowcount != 1:
        return False
    _event(db, item, "resolved", user_id, at, note=note)
    return True


def resolve_by_system(db: Session, patient_id: int, key: str, note: str) -> WorkItem | None:
    """Close an item whose cause went away (the follow-up got booked, the change was
    acknowledged); the trail says the system did it and why."""
    item = unresolved(db, patient_id, key)
    if item is None:
        return None
    at = now()
    item.status = "resolved"
    item.resolved_at, item.resolution_note, item.updated_at = at, note, at
    _event(db, item, "resolved", None, at, note=note)
    return item
