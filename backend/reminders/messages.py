"""New-message pushes: a message posted to a thread tells everyone else who may message about
the patient (their own login, caregivers holding message_care_team or managing, the care
team), keyed ``message:{message}:{user}``; the text says only that a message arrived."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.models import Message, MessageThread, Patient
from backend.reminders.audience import circles
from notifications.outbox import enqueue

# A message push older than this is stale: the thread shows the message anyway.
PUSH_LIFETIME = timedelta(hours=24)


def participants(db: Session, patient: Patient, at: datetime) -> dict[int, bool]:
    """Who may message about the patient now: user id -> is on the care team."""
    circle = circles(db, [patient], at)[patient.id]
    found: dict[int, bool] = {}
    if circle.patient_user is not None:
        found[circle.patient_user] = False
    for user_id in sorted(circle.messengers):
        found.setdefault(user_id, False)
    for user_id in sorted(circle.care_team):
        found.setdefault(user_id, True)
    return found


def notify_participants(
    db: Session, patient: Patient, thread: MessageThread, message: Message, at: datetime
) -> int:
    """Queue a push about ``message`` to every participant but its author; returns how many."""
    queued = 0
    for user_id, care_team in participants(db, patient, at).items():
        if user_id == message.author_user_id:
            continue
        row = enqueue(
            db,
            dedupe_key=f"message:{message.id}:{user_id}",
            kind="message",
            user_id=user_id,
            patient_id=patient.id,
            subject={
                "thread_id": thread.id,
                "message_id": message.id,
                "audience": "care_team" if care_team else "patient",
            },
            due_at=at,
            not_after=at + PUSH_LIFETIME,
        )
        queued += row is not None
    return queued
