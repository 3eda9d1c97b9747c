"""Refill reminders: at most one a day per medicine while its supply is at or below its
threshold (its own, else ``DEFAULT_REFILL_THRESHOLD_DAYS``: 7 days) or empty.

Keyed ``refill:{medication}:{local date}:{user}``; to the patient's own login, or the managing
caregivers of a managed patient, and to the caregivers who give that medicine's doses when
they may see the medicines. Dropped when sent if the medicine is no longer active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.caregiving import Permission
from backend.models.medication import Medication
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.reminders.audience import Circle
from backend.schedule.medicines import supply
from notifications.outbox import row

REFILL_LATE = timedelta(hours=20)


def _needs_refill(
    med: Medication, patient: Patient, cache: dict[tuple[Any, ...], bool] | None
) -> bool:
    """``supply(med, patient).needs_refill``, once per distinct input within a run."""
    if cache is None:
        return supply(med, patient).needs_refill
    key = (
        repr(med.timing),
        med.quantity_on_hand,
        med.dose_amount,
        med.refill_threshold_days,
        patient.wake_time,
        patient.breakfast_time,
        patient.lunch_time,
        patient.dinner_time,
        patient.bed_time,
    )
    found = cache.get(key)
    if found is None:
        found = cache[key] = supply(med, patient).needs_refill
    return found


def refill_rows(
    med: Medication,
    patient: Patient,
    circle: Circle,
    now: datetime,
    cache: dict[tuple[Any, ...], bool] | None = None,
) -> list[Any]:
    if med.quantity_on_hand is None or not _needs_refill(med, patient, cache):
        return []
    local_day = now.astimezone(ZoneInfo(patient.time_zone)).date().isoformat()
    recipients = refill_recipients(circle, med.id)
    subject = {"medication_id": med.id, "date": local_day}
    return [
        row(f"refill:{med.id}:{local_day}:{u}", "refill", u, patient.id, now, REFILL_LATE, subject)
        for u in recipients
    ]


def refill_recipients(circle: Circle, medication_id: int) -> list[int]:
    """Who acts for the patient, and the caregivers who give this medicine's doses and may
    see the medicines (view_medications)."""
    acting = circle.acting()
    givers = [
        u
        for u in circle.givers(medication_id)
        if u not in acting and circle.holds(u, Permission.VIEW_MEDICATIONS)
    ]
    return acting + givers


def rekey(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    day = row["due_at"].astimezone(zone).date().isoformat()
    med = row["subject"]["medication_id"]
    return {
        **row,
        "dedupe_key": f"refill:{med}:{day}:{row['user_id']}",
        "subject": {**row["subject"], "date": day},
    }


def refill_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    ids = {int(r.subject["medication_id"]) for r in reminders if "medication_id" in r.subject}
    status = dict(
        db.execute(select(Medication.id, Medication.status).where(Medication.id.in_(ids))).all()
    )
    return {
        r.id: f"medication_{status.get(int(r.subject['medication_id']), 'stopped')}"
        for r in reminders
        if status.get(int(r.subject.get("medication_id", 0))) != "active"
    }
