"""Refill reminders: at most one a day per medicine while its supply is at or below its
threshold (its own, else ``DEFAULT_REFILL_THRESHOLD_DAYS``: 7 days) or empty.

Keyed ``refill:{medication}:{local date}:{user}``; to the patient's own login, or the managing
caregivers of a managed patient, and to the caregivers who give that medicine's doses when
they may see the medicines. Dropped when sent if the medicine is no longer active.

One refill push a day per person and patient: when several medicines run low the same day,
the first of their rows to be sent carries them all ("2 of your medicines are running low",
:func:`count_for`; never naming them unless the person opted in, as every push) and the
others are dropped as ``refill_told_together`` (:func:`together_check`), as is a row whose
day's push was already sent. A snoozed push is the person's own ask: it always goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from backend.models.caregiving import Permission
from backend.models.medication import Medication
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.reminders.audience import Circle
from backend.schedule.medicines import Scheduled, patient_key, supply
from notifications.outbox import row

REFILL_LATE = timedelta(hours=20)
KIND = "refill"
TOGETHER = "refill_told_together"
# A day's rows are due within that local day, moved by quiet hours at most into the next.
_DAY_SPAN = timedelta(days=2)


def _needs_refill(
    med: Scheduled,
    patient: Patient,
    cache: dict[tuple[Any, ...], bool] | None,
    timing_text: str | None = None,
    patient_part: tuple[Any, ...] | None = None,
) -> bool:
    """``supply(med, patient).needs_refill``, once per distinct input within a run (the
    schedule by its JSON text when the caller read it so, as ``expansion_key``; the
    patient's routine and zone, ``patient_key``, which the caller may have made)."""
    if cache is None:
        return supply(med, patient).needs_refill
    key = (
        repr(med.timing) if timing_text is None else timing_text,
        med.quantity_on_hand,
        med.dose_amount,
        med.refill_threshold_days,
        *(patient_key(patient) if patient_part is None else patient_part),
    )
    found = cache.get(key)
    if found is None:
        found = cache[key] = supply(med, patient).needs_refill
    return found


def refill_rows(
    med: Scheduled,
    patient: Patient,
    circle: Circle,
    now: datetime,
    cache: dict[tuple[Any, ...], bool] | None = None,
    timing_text: str | None = None,
    patient_part: tuple[Any, ...] | None = None,
) -> list[Any]:
    if med.quantity_on_hand is None or not _needs_refill(
        med, patient, cache, timing_text, patient_part
    ):
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


Day = tuple[int, int | None, str]  # (recipient, patient, the patient's local date)


def _day(reminder: Reminder) -> Day:
    return (reminder.user_id, reminder.patient_id, str((reminder.subject or {}).get("date")))


def _rows_of_days(
    db: Session, reminders: Sequence[Reminder], *, told: bool
) -> list[tuple[Day, int | None]]:
    """(day, medicine) of the refill rows of the same recipients, patients and days as
    ``reminders``: those sent, and (``told``) those being sent or dropped to go with
    another. One query for the batch."""
    if not reminders:
        return []
    due = [r.due_at for r in reminders]
    told_with = (Reminder.state.in_(("sent", "claimed"))) | (Reminder.cancelled_reason == TOGETHER)
    rows = db.execute(
        select(Reminder.user_id, Reminder.patient_id, Reminder.subject).where(
            Reminder.kind == KIND,
            Reminder.user_id.in_({r.user_id for r in reminders}),
            Reminder.patient_id.in_({r.patient_id for r in reminders if r.patient_id}),
            Reminder.due_at.between(min(due) - _DAY_SPAN, max(due) + _DAY_SPAN),
            told_with if told else Reminder.state == "sent",
        )
    )
    wanted = {_day(r) for r in reminders}
    found = []
    for user_id, patient_id, subject in rows:
        day = (user_id, patient_id, str((subject or {}).get("date")))
        if day in wanted:
            found.append((day, (subject or {}).get("medication_id")))
    return found


def together_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """Of a claimed batch's refill rows, one per recipient, patient and day goes (the first);
    the rest, and those whose day's push went already, are dropped to go with it."""
    sent = {day for day, _ in _rows_of_days(db, reminders, told=False)}
    carried: set[Day] = set()
    reasons: dict[int, str] = {}
    for r in sorted(reminders, key=lambda r: r.id):
        day = _day(r)
        if (r.subject or {}).get("snoozed"):
            carried.add(day)
        elif day in sent or day in carried:
            reasons[r.id] = TOGETHER
        else:
            carried.add(day)
    return reasons


_CACHE = "backend.reminders.refills"


def count_for(reminder: Reminder) -> int | None:
    """How many medicines a refill push is about: its own, and those dropped to go with it
    or already told that day; counted once for every refill row in its session, after
    :func:`together_check` (the dispatcher renders after its checks)."""
    db = object_session(reminder)
    if db is None:
        return None
    cache: dict[int, int] = db.info.setdefault(_CACHE, {})
    if reminder.id not in cache:
        batch = [
            r
            for r in (reminder, *db.identity_map.values())
            if isinstance(r, Reminder) and r.kind == KIND and r.id not in cache
        ]
        medicines: dict[Day, set[Any]] = {}
        for day, medication_id in _rows_of_days(db, batch, told=True):
            medicines.setdefault(day, set()).add(medication_id)
        for r in batch:
            cache[r.id] = len(medicines.get(_day(r), set()) | {r.subject.get("medication_id")})
    return cache[reminder.id]
