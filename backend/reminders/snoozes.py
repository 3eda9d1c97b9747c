"""Snoozing: "remind me again in N minutes" on a dose reminder, a follow-up or a refill.

A pending reminder moves to the new time; one already sent is sent again at it (a new row,
keyed after the original and the new time). Nothing ever moves earlier: a reminder
not yet due by the snooze's end is a 409. The dose's later steps (follow-up, alerts) move
by the same amount, so snoozing the reminder does not bring the caregivers' alert forward.
Snoozed rows carry ``subject.snoozed``: a re-plan for another reason (a recipient's quiet
hours, a zone) leaves them as they are; only a change of the medicine's schedule replaces
them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.errors import ServiceError
from backend.models.outbox import Reminder
from backend.reminders.doses import pending_by_slot
from notifications.outbox import enqueue, reschedule, restamp

SNOOZABLE = ("dose", "dose_followup", "refill")


def snooze(db: Session, reminder: Reminder, minutes: int, at: datetime) -> Reminder:
    """Remind again ``minutes`` after ``at``; returns the reminder that will say it."""
    if reminder.kind not in SNOOZABLE:
        raise ServiceError(409, "This reminder cannot be snoozed.")
    if reminder.state not in ("pending", "sent"):
        raise ServiceError(409, f"This reminder is {reminder.state}; it cannot be snoozed.")
    new_due = at + timedelta(minutes=minutes)
    if new_due <= reminder.due_at:
        # A snooze only ever postpones: never the reminder, nor the caregivers' alert after
        # it, brought forward.
        raise ServiceError(
            409, "This reminder is not due yet; a snooze can only make it later, not earlier."
        )
    delta = new_due - reminder.due_at
    for later in pending_by_slot(db, reminder):
        if later.due_at > reminder.due_at:
            reschedule(db, later.id, later.due_at + delta, later.not_after + delta)
            restamp(db, later.id, {**later.subject, "snoozed": True})
    if reminder.state == "pending":
        reschedule(db, reminder.id, new_due, reminder.not_after + delta)
        restamp(db, reminder.id, {**reminder.subject, "snoozed": True})
        db.refresh(reminder)
        return reminder
    again = enqueue(
        db,
        dedupe_key=f"{reminder.dedupe_key}:snooze:{int(new_due.timestamp())}"[:200],
        kind=reminder.kind,
        user_id=reminder.user_id,
        patient_id=reminder.patient_id,
        subject={**reminder.subject, "snoozed": True},
        due_at=new_due,
        not_after=new_due + (reminder.not_after - reminder.due_at),
    )
    if again is None:
        raise ServiceError(409, "Already snoozed to that time.")
    return again
