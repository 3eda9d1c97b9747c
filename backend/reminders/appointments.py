"""Appointment reminders: one per lead time (``reminder_lead_minutes``) to the patient's
login and the attendee, keyed ``appt:{appointment}:{lead}:{start}:{user}``; a moved or
cancelled appointment's reminders are dropped when sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.appointment import Appointment
from backend.models.outbox import Reminder
from backend.reminders.audience import Circle
from notifications.outbox import row


def appointment_rows(
    appt: Appointment, circle: Circle, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    if appt.status != "booked":
        return []
    # The attendee hears of it only while they may see the patient's appointments.
    users = [
        u
        for u in (circle.patient_user, appt.attendee_user_id)
        if u is not None and circle.may_receive(u, "appointment", None)
    ]
    stamp = int(appt.start_at.timestamp())
    subject = {"appointment_id": appt.id, "start": appt.start_at.isoformat()}
    rows = []
    for lead in appt.reminder_lead_minutes or []:
        due = appt.start_at - timedelta(minutes=lead)
        if not start <= due < end:
            continue
        for user_id in dict.fromkeys(users):
            key = f"appt:{appt.id}:{lead}:{stamp}:{user_id}"
            rows.append(
                row(
                    key,
                    "appointment",
                    user_id,
                    appt.patient_id,
                    due,
                    appt.start_at - due,
                    {**subject, "lead_minutes": lead},
                )
            )
    return rows


def appointment_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    ids = {int(r.subject["appointment_id"]) for r in reminders if "appointment_id" in r.subject}
    found = {a.id: a for a in db.scalars(select(Appointment).where(Appointment.id.in_(ids)))}
    reasons: dict[int, str] = {}
    for r in reminders:
        appt = found.get(int(r.subject.get("appointment_id", 0)))
        if appt is None or appt.status != "booked":
            reasons[r.id] = "appointment_cancelled"
        elif appt.start_at.isoformat() != r.subject.get("start"):
            reasons[r.id] = "appointment_moved"
    return reasons
