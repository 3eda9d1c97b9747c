""" "Ana is on it": when one person takes a missed-dose alert, the same alert on everyone
else's phone is replaced by one that says who took it.

Each missed-dose alert of that dose that already reached someone else (``sent``: FCM
accepted it for at least one of their devices) gets one ``alert_taken`` row, keyed
``alert_taken:{alert}``, due at once, with ``subject.replaces`` = the alert's outbox id. The
dispatcher gives a push with ``replaces`` the *replaced* reminder's tag / collapse id
(``reminder-{alert}``, ``notifications.channels.Push.collapse_id``), so the phone swaps the
old notification for the new one instead of showing both. The text names the taker by
first name and is as lock-screen safe as the alert (``notifications.texts``).

Alerts still pending are not replaced: "I'm on it" cancels them (``doses.on_acknowledged``).
An alert in flight at that very moment (claimed by a dispatcher) goes out as it was; its
recipient sees who took it in ``GET /me/alerts``. The row needs what the alert needed
(``receive_missed_dose_alerts``, ``audience.KIND_PERMISSION``), asked again when it is sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.escalation import DoseAcknowledgement
from backend.models.outbox import Reminder
from backend.reminders.timeline import ALERT_LATE
from notifications.outbox import enqueue

KIND = "alert_taken"


def taken_key(alert_id: int) -> str:
    return f"{KIND}:{alert_id}"


def replace_others(db: Session, ack: DoseAcknowledgement, at: datetime) -> int:
    """Queue the "<taker> is on it" push for everyone else whose phone shows an alert of
    the acknowledged dose; returns how many were queued (none twice: one key per alert)."""
    alerts = db.scalars(
        select(Reminder).where(
            Reminder.patient_id == ack.patient_id,
            Reminder.kind == "missed_dose_alert",
            Reminder.state == "sent",
            Reminder.user_id != ack.user_id,
            Reminder.subject["medication_id"].as_integer() == ack.medication_id,
            Reminder.subject["slot_key"].as_string() == ack.slot_key,
        )
    )
    queued = 0
    for alert in alerts:
        subject = alert.subject or {}
        row = enqueue(
            db,
            dedupe_key=taken_key(alert.id),
            kind=KIND,
            user_id=alert.user_id,
            patient_id=alert.patient_id,
            due_at=at,
            not_after=at + ALERT_LATE,
            subject={
                "medication_id": ack.medication_id,
                "slot_key": ack.slot_key,
                "dose_at": subject.get("dose_at", ""),
                "replaces": alert.id,
                "taken_by_user_id": ack.user_id,
            },
        )
        queued += row is not None
    return queued
