"""The opt-in morning summary: "you have N things today".

A user who set ``morning_summary`` gets one ``summary`` reminder per local day, at
``morning_summary_time`` (their wake time when unset) in their own ``time_zone``, keyed
``summary:{user}:{local date}`` so planning twice creates one. It is non-urgent: inside the
user's quiet hours it waits for their end (:func:`backend.reminders.quiet_hours.apply_quiet_hours`),
and it is useless after the end of that morning (``not_after`` = due + 3 h).

N -- the scheduled doses and booked appointments of that day, for the user's own patient
record and everyone they care for with the permission to see them -- is counted when the
push is rendered (:func:`count_for`), not when it is planned: a row is planned up to 48 h
ahead, and what is on the day's plan is what it holds at 07:00. The count is made for the
whole dispatcher batch at once (a handful of queries per batch), and the subject carries
only the date.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from backend.clock import now as clock_now
from backend.models import Appointment, CaregiverGrant, Medication, Patient, Permission, User
from backend.models.outbox import Reminder
from backend.reminders.quiet_hours import apply_quiet_hours
from backend.reminders.timeline import HORIZON
from backend.schedule.medicines import local_day, occurrences
from notifications.outbox import REPLANNED, cancel, upsert_planned

KIND = "summary"
SUMMARY_LATE = timedelta(hours=3)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def summary_rows(
    db: Session, at: datetime, end: datetime, *, user_ids: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """The summary rows due in [at, end) for opted-in users (one query)."""
    stmt = (
        select(User.id, User.time_zone, User.morning_summary_time, User.wake_time, Patient.id)
        .outerjoin(Patient, Patient.user_id == User.id)
        .where(User.morning_summary.is_(True))
    )
    if user_ids is not None:
        stmt = stmt.where(User.id.in_(list(user_ids)))
    rows: list[dict[str, Any]] = []
    for user_id, zone_name, at_time, wake, own in db.execute(stmt):
        zone = _zone(zone_name)
        when: time = at_time or wake or time(7, 0)
        day = at.astimezone(zone).date()
        while (due := datetime.combine(day, when, tzinfo=zone).astimezone(at.tzinfo)) < end:
            if due >= at:
                rows.append(
                    {
                        "dedupe_key": f"summary:{user_id}:{day.isoformat()}",
                        "kind": KIND,
                        "user_id": user_id,
                        "patient_id": own,
                        "subject": {"date": day.isoformat()},
                        "due_at": due,
                        "not_after": due + SUMMARY_LATE,
                        "next_attempt_at": due,
                    }
                )
            day += timedelta(days=1)
    return rows


def plan_summaries(
    db: Session, at: datetime, end: datetime, *, user_ids: Iterable[int] | None = None
) -> dict[str, int]:
    """Plan the morning summaries due in [at, end); quiet hours apply."""
    rows = summary_rows(db, at, end, user_ids=user_ids)
    if not rows:
        return {}
    return dict(upsert_planned(db, apply_quiet_hours(db, rows, {}), at))


def replan_summaries(db: Session, user_id: int, now: datetime | None = None) -> int:
    """The user's summary setting, time, zone, wake time or quiet hours changed."""
    at = now or clock_now()
    cancelled = cancel(db, reason=REPLANNED, user_id=user_id, kinds=(KIND,), due_from=at)
    plan_summaries(db, at, at + HORIZON, user_ids=[user_id])
    return cancelled


# -- the count, at render time ------------------------------------------------------------


def count_things(db: Session, wanted: Iterable[tuple[int, date]]) -> dict[tuple[int, date], int]:
    """Scheduled doses + booked appointments on each (user, local date), over the user's own
    patient record and the patients they care for with the permission (five queries)."""
    pairs = set(wanted)
    if not pairs:
        return {}
    users = {u for u, _ in pairs}
    at = clock_now()
    # patient id -> {user: (sees doses, sees appointments)}
    reach: dict[int, dict[int, tuple[bool, bool]]] = {}
    patients: dict[int, Patient] = {}
    for patient in db.scalars(select(Patient).where(Patient.user_id.in_(users))):
        assert patient.user_id is not None
        patients[patient.id] = patient
        reach.setdefault(patient.id, {})[patient.user_id] = (True, True)
    grants = db.execute(
        select(CaregiverGrant, Patient)
        .join(Patient, Patient.id == CaregiverGrant.patient_id)
        .where(CaregiverGrant.caregiver_user_id.in_(users), CaregiverGrant.active_clause(at))
    )
    for grant, patient in grants:
        patients[patient.id] = patient
        sees_meds = grant.allows(Permission.VIEW_MEDICATIONS)
        sees_appts = grant.allows(Permission.VIEW_APPOINTMENTS)
        old = reach.setdefault(patient.id, {}).get(grant.caregiver_user_id, (False, False))
        reach[patient.id][grant.caregiver_user_id] = (old[0] or sees_meds, old[1] or sees_appts)
    days_of: dict[int, set[date]] = {}
    for user_id, day in pairs:
        days_of.setdefault(user_id, set()).add(day)
    # patient id -> local date -> its [start, end)
    windows: dict[int, dict[date, tuple[datetime, datetime]]] = {}
    for pid, who in reach.items():
        for user_id in who:
            for day in days_of.get(user_id, ()):
                windows.setdefault(pid, {})[day] = local_day(day, patients[pid].time_zone)
    found: dict[tuple[int, date], int] = {}
    if not windows:
        return {p: 0 for p in pairs}
    doses: dict[tuple[int, date], int] = {}
    med_patients = [p for p, who in reach.items() if any(m for m, _ in who.values())]
    if med_patients:
        meds = db.scalars(
            select(Medication).where(
                Medication.patient_id.in_(med_patients), Medication.status == "active"
            )
        )
        for med in meds:
            if not med.timing:
                continue
            for day, (start, end) in windows.get(med.patient_id, {}).items():
                n = len(occurrences(med, patients[med.patient_id], start, end))
                doses[med.patient_id, day] = doses.get((med.patient_id, day), 0) + n
    appts: dict[tuple[int, date], int] = {}
    appt_patients = [p for p, who in reach.items() if any(a for _, a in who.values())]
    if appt_patients:
        all_windows = [w for by_day in windows.values() for w in by_day.values()]
        rows = db.scalars(
            select(Appointment).where(
                Appointment.patient_id.in_(appt_patients),
                Appointment.status == "booked",
                Appointment.start_at < max(e for _, e in all_windows),
                Appointment.end_at > min(s for s, _ in all_windows),
            )
        )
        for appt in rows:
            for day, (start, end) in windows.get(appt.patient_id, {}).items():
                if start <= appt.start_at < end:
                    appts[appt.patient_id, day] = appts.get((appt.patient_id, day), 0) + 1
    for user_id, day in pairs:
        total = 0
        for pid, who in reach.items():
            sees = who.get(user_id)
            if sees is None:
                continue
            total += doses.get((pid, day), 0) if sees[0] else 0
            total += appts.get((pid, day), 0) if sees[1] else 0
        found[user_id, day] = total
    return found


_CACHE = "backend.reminders.morning_summary"


def count_for(reminder: Reminder) -> int | None:
    """The count for a summary reminder, made once for every summary in its session."""
    subject = reminder.subject or {}
    if isinstance(subject.get("count"), int):
        return int(subject["count"])
    db = object_session(reminder)
    if db is None or not isinstance(subject.get("date"), str):
        return None
    cache: dict[int, int | None] = db.info.setdefault(_CACHE, {})
    if reminder.id not in cache:
        batch = [
            r
            for r in (reminder, *db.identity_map.values())
            if isinstance(r, Reminder) and r.kind == KIND and r.id not in cache
        ]
        keys: dict[int, tuple[int, date]] = {}
        for r in batch:
            try:
                keys[r.id] = (r.user_id, date.fromisoformat(str((r.subject or {}).get("date"))))
            except ValueError:
                cache[r.id] = None
        counts = count_things(db, keys.values())
        for rid, key in keys.items():
            cache[rid] = counts.get(key, 0)
    return cache.get(reminder.id)
