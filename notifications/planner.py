"""The planner: schedules, appointment lead times and supply into outbox rows, ahead of time.

:func:`plan` covers a rolling horizon (default 48 h) for every patient, a batch of patients
at a time with a fixed number of queries per batch (patients, medicines, chains, circle,
dose logs, appointments, one multi-row INSERT), so it is linear in patients with no query
per row. Every row has a dedupe key:

- ``dose:{medication}:{slot}`` the dose reminder to the patient's own login;
- ``dose:{medication}:{slot}:{step}:{user}`` each escalation step (follow-up, alerts);
- ``appt:{appointment}:{lead}:{start}:{user}`` an appointment reminder;
- ``refill:{medication}:{local date}`` at most one refill reminder a day;
- ``checkin:{schedule}:{slot}:{user}`` a check-in prompt (``backend.services.checkin_schedules``).

Planning twice creates nothing twice (``ON CONFLICT DO NOTHING``). The ``replan_*``
functions run in the caller's transaction, with the change: they cancel the pending rows
the change touches (reason ``replanned``) and plan again; a key planned again revives its
cancelled row with the new times instead of being blocked by it. Rows cancelled for any
other reason (dose logged, "I'm on it", access revoked) stay cancelled.

Quiet hours. A recipient's ``quiet_hours_start`` / ``quiet_hours_end`` are wall-clock times
in *their own* ``time_zone`` (not the patient's), the interval is ``[start, end)`` and may
wrap midnight (22:00-07:00); equal bounds mean no quiet hours. Non-urgent kinds
(:data:`QUIET_KINDS`: appointment, refill, summary, device_health, checkin_prompt) due inside
the quiet period get ``due_at`` (and ``next_attempt_at``) moved to the end of that period; their
``not_after`` stays. If the moved time is at or past ``not_after`` the reminder would only be
sent uselessly (an appointment reminder after the appointment started), so it is not planned
at all. Two lead-time reminders of one appointment moved onto the same instant become one.
Dose kinds never wait: a dose reminder is due when the patient (or their care plan) said
the dose is due -- the 23:00 bedtime pill is wanted at 23:00 -- and its follow-up and
missed-dose alerts are part of the escalation chain the patient chose, so quiet hours do not
hold back a time-critical medicine's reminder or a missed-dose alert for it. A refill
reminder is keyed by the patient-local date of its (moved) due time, so a reminder
planned at 23:00 and moved to 07:00 is the same row the 07:00 run would plan. Quiet hours are
read when a row is planned; changing them re-plans that user's pending reminders
(:func:`replan_for_user`). :func:`quiet_until` is the rule, for other enqueuers too.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, null, select, text, union_all
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend.clock import now as clock_now
from backend.models.appointment import Appointment
from backend.models.checkin_schedule import CheckinSchedule
from backend.models.medication import DoseLog, Medication
from backend.models.patient import Patient
from backend.models.user import User
from backend.services.checkin_schedules import prompt_rows
from backend.services.medications import expansion_key, occurrences, supply
from notifications.escalation import Circle, Step, chain_of, chains_for, circles
from notifications.outbox import Reminder, cancel

HORIZON = timedelta(hours=48)
# How far back a re-plan looks for doses whose later steps are still ahead.
LOOKBACK = timedelta(hours=24)
BATCH = 500
DOSE_KINDS = ("dose", "dose_followup", "missed_dose_alert")
# Non-urgent: these wait for the end of the recipient's quiet hours (see the docstring).
# A check-in prompt waits too (it stays answerable for hours), and is dropped if the end of the
# quiet hours is past its answer window.
QUIET_KINDS = ("appointment", "refill", "summary", "device_health", "checkin_prompt")
REPLANNED = "replanned"

DOSE_LATE = timedelta(hours=2)
DOSE_LATE_CRITICAL = timedelta(hours=1)
FOLLOW_UP_LATE = timedelta(hours=1)
ALERT_LATE = timedelta(hours=3)
REFILL_LATE = timedelta(hours=20)


@dataclass(frozen=True)
class QuietHours:
    zone: ZoneInfo
    start: time
    end: time


def quiet_until(due: datetime, quiet: QuietHours | None) -> datetime | None:
    """The end of the quiet period ``due`` falls in, or None if it falls in none."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = due.astimezone(quiet.zone)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside, next_day = quiet.start <= t < quiet.end, False
    else:  # wraps midnight: [start, 24:00) + [00:00, end)
        inside, next_day = t >= quiet.start or t < quiet.end, t >= quiet.start
    if not inside:
        return None
    day = local.date() + timedelta(days=1 if next_day else 0)
    # A wall time in a DST gap resolves (fold=0) to the instant one offset earlier, still
    # after ``due``; the max() guards the impossible anyway.
    end = datetime.combine(day, quiet.end, tzinfo=quiet.zone).astimezone(due.tzinfo)
    return max(end, due)


def quiet_hours_of(db: Session, user_ids: Iterable[int]) -> dict[int, QuietHours]:
    """The quiet hours of those users who set them (one query)."""
    ids = sorted(set(user_ids))
    found: dict[int, QuietHours] = {}
    for i in range(0, len(ids), 1000):
        for uid, zone, start, end in db.execute(
            select(User.id, User.time_zone, User.quiet_hours_start, User.quiet_hours_end).where(
                User.id.in_(ids[i : i + 1000]),
                User.quiet_hours_start.is_not(None),
            )
        ):
            if start is not None and end is not None:
                found[uid] = QuietHours(ZoneInfo(zone or "UTC"), start, end)
    return found


def apply_quiet_hours(
    db: Session, rows: list[dict[str, Any]], zones: dict[int, str]
) -> list[dict[str, Any]]:
    """Move non-urgent rows out of their recipient's quiet hours; drop the ones it makes
    useless (moved to or past ``not_after``) and the doubles it makes."""
    users = {r["user_id"] for r in rows if r["kind"] in QUIET_KINDS}
    if not users:
        return rows
    quiet = quiet_hours_of(db, users)
    if not quiet:
        return rows
    out: list[dict[str, Any]] = []
    seen_appt: set[tuple[int, int, datetime]] = set()
    for row in rows:
        if row["kind"] in QUIET_KINDS:
            moved = quiet_until(row["due_at"], quiet.get(row["user_id"]))
            if moved is not None:
                if moved >= row["not_after"]:
                    continue
                row = {**row, "due_at": moved, "next_attempt_at": moved}
                if row["kind"] == "refill":
                    row = _rekey_refill(row, ZoneInfo(zones.get(row["patient_id"]) or "UTC"))
            if row["kind"] == "appointment":
                spot = (int(row["subject"]["appointment_id"]), row["user_id"], row["due_at"])
                if spot in seen_appt:
                    continue
                seen_appt.add(spot)
        out.append(row)
    return out


def _rekey_refill(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    day = row["due_at"].astimezone(zone).date().isoformat()
    med = row["subject"]["medication_id"]
    return {
        **row,
        "dedupe_key": f"refill:{med}:{day}:{row['user_id']}",
        "subject": {**row["subject"], "date": day},
    }


def dose_key(medication_id: int, slot_key: str) -> str:
    return f"dose:{medication_id}:{slot_key}"


def _row(
    key: str,
    kind: str,
    user_id: int,
    patient_id: int,
    due: datetime,
    late: timedelta,
    subject: dict[str, Any],
) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "kind": kind,
        "user_id": user_id,
        "patient_id": patient_id,
        "subject": subject,
        "due_at": due,
        "not_after": due + late,
        "next_attempt_at": due,
    }


# One expansion per distinct schedule within a run: (timing, routine, zone, policy, home zone,
# dates) -> (slot key, instant, ISO instant) of each occurrence in the window. Thousands of
# medicines share a few timings, routines and zones, and occurrences() is a pure function of
# exactly these fields (for a given window).
_ExpansionKey = tuple[Any, ...]
_Slots = list[tuple[str, datetime, str]]


def _slots(
    med: Medication,
    patient: Patient,
    start: datetime,
    end: datetime,
    cache: dict[_ExpansionKey, _Slots] | None,
) -> _Slots:
    if cache is None:
        return [(o.slot_key, o.at, o.at.isoformat()) for o in occurrences(med, patient, start, end)]
    key = expansion_key(med, patient)
    found = cache.get(key)
    if found is None:
        found = [
            (o.slot_key, o.at, o.at.isoformat()) for o in occurrences(med, patient, start, end)
        ]
        cache[key] = found
    return found


def _dose_rows(
    med: Medication,
    patient: Patient,
    circle: Circle,
    chain: Sequence[Step],
    start: datetime,
    end: datetime,
    now: datetime,
    logged: set[tuple[int, str]],
    cache: dict[_ExpansionKey, _Slots] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The dose rows of ``med``; keys in ``skip`` (rows that exist and that writing again
    would leave as they are) are not built."""
    rows: list[dict[str, Any]] = []
    med_id, patient_id, patient_user = med.id, patient.id, circle.patient_user
    late = DOSE_LATE_CRITICAL if med.time_critical else DOSE_LATE
    steps = [
        (
            index,
            step.after,
            "dose_followup" if step.notify == "patient" else "missed_dose_alert",
            FOLLOW_UP_LATE if step.notify == "patient" else ALERT_LATE,
            step.notify,
            circle.recipients(step),
        )
        for index, step in enumerate(chain, start=1)
    ]
    for slot_key, at, at_iso in _slots(med, patient, start, end, cache):
        if (med_id, slot_key) in logged:
            continue
        key = dose_key(med_id, slot_key)
        subject = {"medication_id": med_id, "slot_key": slot_key, "dose_at": at_iso}
        if patient_user is not None and at >= now and key not in skip:
            rows.append(_row(key, "dose", patient_user, patient_id, at, late, subject))
        for index, after, kind, step_late, notify, users in steps:
            due = at + after
            if due < now:
                continue
            step_subject: dict[str, Any] | None = None
            for user_id in users:
                step_key = f"{key}:{index}:{user_id}"
                if step_key in skip:
                    continue
                if step_subject is None:
                    step_subject = {**subject, "step": index, "target": notify}
                rows.append(_row(step_key, kind, user_id, patient_id, due, step_late, step_subject))
    return rows


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


def _refill_row(
    med: Medication,
    patient: Patient,
    circle: Circle,
    now: datetime,
    cache: dict[tuple[Any, ...], bool] | None = None,
) -> list[Any]:
    if med.refill_threshold_days is None or not _needs_refill(med, patient, cache):
        return []
    local_day = now.astimezone(ZoneInfo(patient.time_zone)).date().isoformat()
    recipients = [circle.patient_user] if circle.patient_user else sorted(circle.managing)
    subject = {"medication_id": med.id, "date": local_day}
    return [
        _row(f"refill:{med.id}:{local_day}:{u}", "refill", u, patient.id, now, REFILL_LATE, subject)
        for u in recipients
    ]


def _appointment_rows(
    appt: Appointment, circle: Circle, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    if appt.status != "booked":
        return []
    users = [u for u in (circle.patient_user, appt.attendee_user_id) if u is not None]
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
                _row(
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


# PostgreSQL: one statement per chunk whose rows come as one JSON array, unpacked server-side.
# Compiled once and cached (a multi-row VALUES is compiled again for every chunk, which
# cost more than the database's work), and a chunk can be large.
_PG_WRITE = text(
    """
    INSERT INTO reminders (dedupe_key, kind, user_id, patient_id, subject, due_at, not_after,
                           next_attempt_at, state, attempts, created_at)
    SELECT t.k, t.kd, t.u, t.p, t.s, t.d, t.na, t.d, 'pending', 0, :now
    FROM json_to_recordset(CAST(:rows AS json))
         AS t(k text, kd text, u integer, p integer, s json, d timestamptz, na timestamptz)
    ON CONFLICT (dedupe_key) DO UPDATE SET
        state = 'pending', cancelled_reason = NULL, due_at = EXCLUDED.due_at,
        not_after = EXCLUDED.not_after, next_attempt_at = EXCLUDED.next_attempt_at,
        subject = EXCLUDED.subject, attempts = 0
    WHERE reminders.state = 'cancelled' AND reminders.cancelled_reason = :replanned
    RETURNING kind
    """.strip()
)
PG_CHUNK = 10_000


def _write(
    db: Session,
    rows: list[dict[str, Any]],
    now: datetime,
    skip: frozenset[str] | set[str] = frozenset(),
) -> Counter[str]:
    """Insert the rows; a key seen before stays, unless its row was cancelled by a re-plan.
    Keys in ``skip`` are known to stay (see :func:`_existing`) and are not sent."""
    created: Counter[str] = Counter()
    if not rows:
        return created
    unique = [r for k, r in {r["dedupe_key"]: r for r in rows}.items() if k not in skip]
    if not unique:
        return created
    if db.get_bind().dialect.name == "postgresql":
        iso: dict[datetime, str] = {}  # rows share few instants: format each once

        def stamp(at: datetime) -> str:
            found = iso.get(at)
            if found is None:
                found = iso[at] = at.isoformat()
            return found

        for i in range(0, len(unique), PG_CHUNK):
            chunk = unique[i : i + PG_CHUNK]
            # One JSON document per chunk: psycopg's text arrays escape each element with
            # a regex, json.dumps is C.
            payload = json.dumps(
                [
                    {
                        "k": r["dedupe_key"],
                        "kd": r["kind"],
                        "u": r["user_id"],
                        "p": r["patient_id"],
                        "s": r["subject"],
                        "d": stamp(r["due_at"]),
                        "na": stamp(r["not_after"]),
                    }
                    for r in chunk
                ]
            )
            params = {"now": now, "replanned": REPLANNED, "rows": payload}
            created.update(db.execute(_PG_WRITE, params).scalars())
        return created
    # SQLite: one multi-row VALUES statement per chunk (an executemany of an upsert with
    # RETURNING would run row by row); 500 rows x 11 columns stays under its limit.
    for i in range(0, len(unique), 500):
        chunk = [
            {**r, "state": "pending", "attempts": 0, "created_at": now} for r in unique[i : i + 500]
        ]
        insert = sqlite.insert(Reminder).values(chunk)
        stmt = insert.on_conflict_do_update(
            index_elements=["dedupe_key"],
            set_={
                "state": "pending",
                "cancelled_reason": None,
                "due_at": insert.excluded.due_at,
                "not_after": insert.excluded.not_after,
                "next_attempt_at": insert.excluded.next_attempt_at,
                "subject": insert.excluded.subject,
                "attempts": 0,
            },
            where=(Reminder.state == "cancelled") & (Reminder.cancelled_reason == REPLANNED),
        ).returning(Reminder.kind)
        created.update(db.execute(stmt).scalars())
    return created


def plan(
    db: Session,
    now: datetime | None = None,
    horizon: timedelta = HORIZON,
    *,
    patient_ids: Iterable[int] | None = None,
    medication_ids: Iterable[int] | None = None,
    appointment_ids: Iterable[int] | None = None,
    lookback: timedelta = timedelta(0),
) -> dict[str, int]:
    """Plan [now, now + horizon) for everyone, or for the given patients / medicines /
    appointments only. Returns the rows created (or revived) by kind, and ``patients``."""
    at = now or clock_now()
    start, end = at - lookback, at + horizon
    totals: Counter[str] = Counter()
    meds_only = list(medication_ids) if medication_ids is not None else None
    appts_only = list(appointment_ids) if appointment_ids is not None else None
    scope = _patient_scope(db, patient_ids, meds_only, appts_only)
    cache: dict[_ExpansionKey, _Slots] = {}
    refills: dict[tuple[Any, ...], bool] = {}
    last = 0
    while True:
        stmt = select(Patient).where(Patient.id > last).order_by(Patient.id).limit(BATCH)
        if scope is not None:
            stmt = stmt.where(Patient.id.in_(scope))
        patients = list(db.scalars(stmt))
        if not patients:
            break
        last = patients[-1].id
        skip: set[str] = set()
        rows = _plan_batch(
            db, patients, at, start, end, meds_only, appts_only, cache, skip, refills
        )
        totals.update(_write(db, rows, at, skip))
        totals["patients"] += len(patients)
    if scope is None:  # a full run: the opt-in morning summaries too (notifications.summary)
        from notifications.summary import plan_summaries

        totals.update(plan_summaries(db, at, at + horizon))
    return dict(totals)


def _patient_scope(
    db: Session,
    patient_ids: Iterable[int] | None,
    meds: list[int] | None,
    appts: list[int] | None,
) -> list[int] | None:
    if patient_ids is not None:
        return list(patient_ids)
    scope: set[int] = set()
    if meds is not None:
        scope |= set(db.scalars(select(Medication.patient_id).where(Medication.id.in_(meds))))
    if appts is not None:
        scope |= set(db.scalars(select(Appointment.patient_id).where(Appointment.id.in_(appts))))
    return None if meds is None and appts is None else sorted(scope)


def _plan_batch(
    db: Session,
    patients: list[Patient],
    at: datetime,
    start: datetime,
    end: datetime,
    meds_only: list[int] | None,
    appts_only: list[int] | None,
    cache: dict[_ExpansionKey, _Slots] | None = None,
    skip: set[str] | None = None,
    refills: dict[tuple[Any, ...], bool] | None = None,
) -> list[dict[str, Any]]:
    """The rows of the batch; ``skip`` (if given) receives the keys :func:`_done` found."""
    by_id = {p.id: p for p in patients}
    circle = circles(db, patients, at)
    rows: list[dict[str, Any]] = []
    everything = meds_only is None and appts_only is None
    if everything or meds_only:
        med_stmt = select(Medication).where(
            Medication.patient_id.in_(by_id), Medication.status == "active"
        )
        if meds_only is not None:
            med_stmt = med_stmt.where(Medication.id.in_(meds_only))
        meds = [m for m in db.scalars(med_stmt) if m.timing or m.refill_threshold_days]
        chains = chains_for(db, by_id)
        logged, existing = _done(db, [m.id for m in meds], list(by_id), start)
        if skip is not None:
            skip |= existing
        else:
            existing = set()
        for med in meds:
            patient = by_id[med.patient_id]
            if med.timing:
                chain = chain_of(chains, med)
                rows += _dose_rows(
                    med, patient, circle[patient.id], chain, start, end, at, logged, cache, existing
                )
            rows += _refill_row(med, patient, circle[patient.id], at, refills)
    if everything or appts_only:
        appt_stmt = select(Appointment).where(
            Appointment.patient_id.in_(by_id),
            Appointment.status == "booked",
            Appointment.start_at > at,
            Appointment.start_at <= end + timedelta(days=15),
        )
        if appts_only is not None:
            appt_stmt = appt_stmt.where(Appointment.id.in_(appts_only))
        for appt in db.scalars(appt_stmt):
            rows += _appointment_rows(appt, circle[appt.patient_id], at, end)
    if everything:
        rows += prompt_rows(db, by_id, circle, start, end, at)
    return apply_quiet_hours(db, rows, {p.id: p.time_zone for p in patients})


def _done(
    db: Session, medication_ids: list[int], patient_ids: list[int], since: datetime
) -> tuple[set[tuple[int, str]], set[str]]:
    """What is done already, in one query per 1,000 medicines / patients:

    - the slots already logged (live): nothing is planned for them;
    - the keys of the patients' rows due from a day before ``since`` that writing again would
      leave as they are (all but those cancelled by a re-plan): they are neither built nor
      sent, so a second run costs little. Only a shortcut: a key missed here is sent, and
      the upsert keeps its row.
    """
    logged: set[tuple[int, str]] = set()
    existing: set[str] = set()
    if not medication_ids:
        return logged, existing
    for i in range(0, max(len(medication_ids), len(patient_ids)), 1000):
        meds, patients = medication_ids[i : i + 1000], patient_ids[i : i + 1000]
        parts = []
        if meds:
            parts.append(
                select(DoseLog.medication_id, DoseLog.slot_key).where(
                    DoseLog.medication_id.in_(meds),
                    DoseLog.undone_at.is_(None),
                    DoseLog.slot_key.is_not(None),
                    DoseLog.scheduled_at >= since - timedelta(hours=2),
                )
            )
        if patients:
            parts.append(
                select(cast(null(), Integer), Reminder.dedupe_key).where(
                    # The range as well: PostgreSQL estimates it (and takes the index) even
                    # with stale statistics, which it does not for a long IN list.
                    Reminder.patient_id.between(min(patients), max(patients)),
                    Reminder.patient_id.in_(patients),
                    Reminder.due_at >= since - LOOKBACK,
                    (Reminder.state != "cancelled")
                    | Reminder.cancelled_reason.is_(None)
                    | (Reminder.cancelled_reason != REPLANNED),
                )
            )
        stmt = parts[0] if len(parts) == 1 else union_all(*parts)
        for med_id, key in db.execute(stmt):
            if key is None:
                continue
            if med_id is None:
                existing.add(key)
            else:
                logged.add((med_id, key))
    return logged, existing


# -- re-planning after a change, in the change's transaction -----------------------------


def replan_for_patient(db: Session, patient_id: int, now: datetime | None = None) -> int:
    """Zone, routine or escalation chain changed: every pending reminder of the patient."""
    at = now or clock_now()
    cancelled = cancel(
        db,
        reason=REPLANNED,
        patient_id=patient_id,
        kinds=(*DOSE_KINDS, "appointment", "refill", "checkin_prompt"),
        due_from=at,
    )
    plan(db, at, patient_ids=[patient_id], lookback=LOOKBACK)
    return cancelled


def replan_for_user(db: Session, user_id: int, now: datetime | None = None) -> int:
    """A user's quiet hours changed: re-plan every patient they have pending reminders of
    (and their own patient record)."""
    at = now or clock_now()
    patient_ids = set(
        db.scalars(
            select(Reminder.patient_id).where(
                Reminder.user_id == user_id,
                Reminder.state.in_(("pending", "cancelled")),
                Reminder.kind.in_(QUIET_KINDS),
                Reminder.due_at >= at - LOOKBACK,
                Reminder.patient_id.is_not(None),
            )
        )
    )
    patient_ids |= set(db.scalars(select(Patient.id).where(Patient.user_id == user_id)))
    # Device-health alerts are enqueued by their check, not planned: moved where they are.
    from notifications.device_health import replan_alerts

    replan_alerts(db, user_id, at)
    return sum(replan_for_patient(db, pid, at) for pid in sorted(p for p in patient_ids if p))


def replan_for_medication(db: Session, medication_id: int, now: datetime | None = None) -> int:
    at = now or clock_now()
    patient_id = db.scalar(select(Medication.patient_id).where(Medication.id == medication_id))
    if patient_id is None:
        return 0
    cancelled = cancel(
        db,
        reason=REPLANNED,
        patient_id=patient_id,
        kinds=(*DOSE_KINDS, "refill"),
        subject={"medication_id": medication_id},
        due_from=at,
    )
    plan(db, at, medication_ids=[medication_id], lookback=LOOKBACK)
    return cancelled


def replan_for_appointment(db: Session, appointment_id: int, now: datetime | None = None) -> int:
    at = now or clock_now()
    patient_id = db.scalar(select(Appointment.patient_id).where(Appointment.id == appointment_id))
    if patient_id is None:
        return 0
    cancelled = cancel(
        db,
        reason=REPLANNED,
        patient_id=patient_id,
        kinds=("appointment",),
        subject={"appointment_id": appointment_id},
        due_from=at,
    )
    plan(db, at, appointment_ids=[appointment_id])
    return cancelled


def replan_for_checkin_schedule(
    db: Session, schedule_id: int, now: datetime | None = None, lookback: timedelta = LOOKBACK
) -> int:
    """A check-in schedule was created or changed: its pending prompts, planned again
    (the schedule's own rows only; two queries besides the circle's and the write). A
    prompt due up to ``lookback`` ago and still answerable is due now."""
    at = now or clock_now()
    patient = db.scalar(
        select(Patient).join(CheckinSchedule).where(CheckinSchedule.id == schedule_id)
    )
    if patient is None:
        return 0
    cancelled = cancel(
        db,
        reason=REPLANNED,
        patient_id=patient.id,
        kinds=("checkin_prompt",),
        subject={"schedule_id": schedule_id},
        due_from=at,
    )
    circle = circles(db, [patient], at)
    rows = prompt_rows(
        db, {patient.id: patient}, circle, at - lookback, at + HORIZON, at, [schedule_id]
    )
    _write(db, apply_quiet_hours(db, rows, {patient.id: patient.time_zone}), at)
    return cancelled


def cancel_caregiver_alerts(db: Session, patient_id: int, user_id: int) -> int:
    """A grant ended: nothing more goes to that caregiver about that patient."""
    return cancel(db, reason="access_revoked", patient_id=patient_id, user_id=user_id)


def pending_by_slot(db: Session, reminder: Reminder) -> list[Reminder]:
    """The still-pending reminders of the same dose as ``reminder``."""
    subject = reminder.subject or {}
    if "slot_key" not in subject or reminder.patient_id is None:
        return []
    prefix = dose_key(int(subject["medication_id"]), str(subject["slot_key"]))
    candidates = db.scalars(
        select(Reminder).where(
            Reminder.patient_id == reminder.patient_id,
            Reminder.state == "pending",
            Reminder.kind.in_(DOSE_KINDS),
        )
    )
    grouped: dict[str, list[Reminder]] = defaultdict(list)
    for row in candidates:
        s = row.subject or {}
        if "slot_key" in s:
            grouped[dose_key(int(s["medication_id"]), str(s["slot_key"]))].append(row)
    return grouped.get(prefix, [])


def run_planner(engine: Engine, at: datetime | None = None) -> dict[str, int]:
    """One planner run in its own transaction (the worker's job, every few minutes)."""
    with Session(bind=engine) as session, session.begin():
        return plan(session, at or clock_now())
