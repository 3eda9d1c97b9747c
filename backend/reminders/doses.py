"""Dose reminders and their escalation: the on-time reminder, the patient's follow-up and
the caregivers' missed-dose alerts, each step of the patient's chain a row.

The on-time reminder and the "patient" steps go to who gives the medicine's doses
(:meth:`backend.reminders.audience.Circle.givers`: the patient, chosen caregivers, or both).
Keys: ``dose:{medication}:{slot}`` for the reminder to the patient's own login,
``dose:{medication}:{slot}:giver:{user}`` for a caregiver's who gives the dose ("Time for
Wei's medicine"), and ``dose:{medication}:{slot}:{step}:{user}`` for each escalation step.
A dose
logged (taken or skipped) cancels what is pending for its slot at once
(:func:`on_dose_logged`); "I'm on it" stops the later steps (:func:`on_acknowledged`); the
dispatcher checks both again when it sends (:func:`dose_check`).

A run plans about a million of these rows: their subjects come with their JSON text
(``notifications.outbox.Subject``), made from pieces each distinct schedule's expansion
shares, so that the bulk write does not serialize them one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from json import dumps
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.errors import ServiceError
from backend.models.escalation import DoseAcknowledgement
from backend.models.medication import DoseLog, Medication
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.reminders.audience import Circle
from backend.reminders.escalation import Step
from backend.reminders.timeline import (
    ALERT_LATE,
    DOSE_KINDS,
    DOSE_LATE,
    DOSE_LATE_CRITICAL,
    FOLLOW_UP_LATE,
)
from backend.schedule.medicines import Scheduled, expansion_key, occurrences
from notifications.outbox import Subject, cancel, row


def dose_key(medication_id: int, slot_key: str) -> str:
    return f"dose:{medication_id}:{slot_key}"


# One expansion per distinct schedule within a run: (timing, routine, zone, policy, home zone,
# dates) -> (slot key, instant, ISO instant, the two as JSON members of a subject) of each
# occurrence in the window. Thousands of
# medicines share a few timings, routines and zones, and occurrences() is a pure function of
# exactly these fields (for a given window).
_ExpansionKey = tuple[Any, ...]
_Slots = list[tuple[str, datetime, str, str]]
ExpansionCache = dict[_ExpansionKey, _Slots]


def _slots(
    med: Scheduled,
    patient: Patient,
    start: datetime,
    end: datetime,
    cache: dict[_ExpansionKey, _Slots] | None,
    timing_text: str | None = None,
    patient_part: tuple[Any, ...] | None = None,
) -> _Slots:
    if cache is None:
        return [_slot(o.slot_key, o.at) for o in occurrences(med, patient, start, end)]
    key = expansion_key(med, patient, timing_text, patient_part)
    found = cache.get(key)
    if found is None:
        found = [_slot(o.slot_key, o.at) for o in occurrences(med, patient, start, end)]
        cache[key] = found
    return found


@lru_cache(maxsize=256)
def _step_members(index: int, notify: str) -> str:
    """The JSON members a step adds to its subject, made once per step and target."""
    return f', "step": {index:d}, "target": {dumps(notify)}}}'


def _slot(slot_key: str, at: datetime) -> tuple[str, datetime, str, str]:
    at_iso = at.isoformat()
    return slot_key, at, at_iso, f', "slot_key": {dumps(slot_key)}, "dose_at": {dumps(at_iso)}'


def dose_rows(
    med: Scheduled,
    patient: Patient,
    circle: Circle,
    chain: Sequence[Step],
    start: datetime,
    end: datetime,
    now: datetime,
    logged: set[tuple[int, str]],
    cache: dict[_ExpansionKey, _Slots] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
    timing_text: str | None = None,
    patient_part: tuple[Any, ...] | None = None,
) -> list[dict[str, Any]]:
    """The dose rows of ``med``; keys in ``skip`` (rows that exist and that writing again
    would leave as they are) are not built. ``timing_text``: the schedule's JSON text, when
    the caller read it (the expansion cache's key, see ``expansion_key``); ``patient_part``:
    the patient's part of that key (``patient_key``), when the caller has it."""
    rows: list[dict[str, Any]] = []
    med_id, patient_id, patient_user = med.id, patient.id, circle.patient_user
    givers = circle.givers(med_id)  # the patient, chosen caregivers, or both
    late = DOSE_LATE_CRITICAL if med.time_critical else DOSE_LATE
    head = f'{{"medication_id": {med_id:d}'  # the subjects' JSON text (see Subject)
    steps = [
        (
            index,
            step.after,
            "dose_followup" if step.notify == "patient" else "missed_dose_alert",
            FOLLOW_UP_LATE if step.notify == "patient" else ALERT_LATE,
            step.notify,
            circle.recipients(step, med_id),
            _step_members(index, step.notify),
        )
        for index, step in enumerate(chain, start=1)
    ]
    slots = _slots(med, patient, start, end, cache, timing_text, patient_part)
    for slot_key, at, at_iso, members in slots:
        if (med_id, slot_key) in logged:
            continue
        key = dose_key(med_id, slot_key)
        # Built for the first row that needs it (a second run builds none)
        subject: dict[str, Any] | None = None
        if at >= now:
            for user_id in givers:
                # The patient's own reminder keeps the plain key; a giver's is theirs.
                giver_key = key if user_id == patient_user else f"{key}:giver:{user_id}"
                if giver_key not in skip:
                    if subject is None:
                        subject = Subject(
                            {"medication_id": med_id, "slot_key": slot_key, "dose_at": at_iso},
                            f"{head}{members}}}",
                        )
                    rows.append(row(giver_key, "dose", user_id, patient_id, at, late, subject))
        for index, after, kind, step_late, notify, users, step_members in steps:
            due = at + after
            if due < now:
                continue
            step_subject: dict[str, Any] | None = None
            for user_id in users:
                step_key = f"{key}:{index}:{user_id}"
                if step_key in skip:
                    continue
                if step_subject is None:
                    step_subject = Subject(
                        {
                            "medication_id": med_id,
                            "slot_key": slot_key,
                            "dose_at": at_iso,
                            "step": index,
                            "target": notify,
                        },
                        f"{head}{members}{step_members}",
                    )
                rows.append(row(step_key, kind, user_id, patient_id, due, step_late, step_subject))
    return rows


def _logged_slots(reminders: Sequence[Reminder]) -> set[tuple[int, str]]:
    return {
        (int(r.subject["medication_id"]), str(r.subject["slot_key"]))
        for r in reminders
        if "slot_key" in (r.subject or {})
    }


def dose_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    slots = _logged_slots(reminders)
    if not slots:
        return {}
    med_ids = {m for m, _ in slots}
    status = dict(
        db.execute(select(Medication.id, Medication.status).where(Medication.id.in_(med_ids))).all()
    )
    logged = set(
        db.execute(
            select(DoseLog.medication_id, DoseLog.slot_key).where(
                tuple_(DoseLog.medication_id, DoseLog.slot_key).in_(list(slots)),
                DoseLog.undone_at.is_(None),
            )
        ).all()
    )
    acked = set(
        db.execute(
            select(DoseAcknowledgement.medication_id, DoseAcknowledgement.slot_key).where(
                tuple_(DoseAcknowledgement.medication_id, DoseAcknowledgement.slot_key).in_(
                    list(slots)
                )
            )
        ).all()
    )
    own = dict(
        db.execute(
            select(Patient.id, Patient.user_id).where(
                Patient.id.in_({r.patient_id for r in reminders if r.patient_id is not None})
            )
        ).all()
    )
    reasons: dict[int, str] = {}
    for r in reminders:
        if "slot_key" not in (r.subject or {}):
            continue
        slot = (int(r.subject["medication_id"]), str(r.subject["slot_key"]))
        state = status.get(slot[0], "stopped")
        if state != "active":
            reasons[r.id] = f"medication_{state}"
        elif slot in logged:
            reasons[r.id] = "dose_logged"
        elif slot in acked and r.kind != "dose" and r.user_id != own.get(r.patient_id or 0):
            reasons[r.id] = "acknowledged"  # the patient's own follow-up still goes
    return reasons


def on_dose_logged(db: Session, patient_id: int, medication_id: int, slot_key: str) -> int:
    """A dose was logged (or skipped): what is still pending for its slot goes, at once."""
    return cancel(
        db,
        reason="dose_logged",
        patient_id=patient_id,
        kinds=DOSE_KINDS,
        subject={"medication_id": medication_id, "slot_key": slot_key},
    )


def on_acknowledged(db: Session, reminder: Reminder) -> int:
    """ "I'm on it": the later steps of that dose to *others* stop -- never the patient's own
    reminders (their follow-up still asks them to log it)."""
    own = db.scalar(select(Patient.user_id).where(Patient.id == reminder.patient_id))
    later = [
        r.id
        for r in pending_by_slot(db, reminder)
        if r.kind in ("dose_followup", "missed_dose_alert") and r.user_id != own
    ]
    return cancel(db, reason="acknowledged", ids=later) if later else 0


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
    for pending in candidates:
        s = pending.subject or {}
        if "slot_key" in s:
            grouped[dose_key(int(s["medication_id"]), str(s["slot_key"]))].append(pending)
    return grouped.get(prefix, [])


def acknowledge(db: Session, reminder: Reminder, at: datetime) -> None:
    """ "I'm on it" on a missed-dose alert that reached the caregiver: who took the dose in
    hand is recorded (the first one; a second says nothing new) and the later steps to others
    stop. An alert not sent yet is not theirs to answer (409)."""
    if reminder.state != "sent":
        raise ServiceError(409, "This alert has not reached you yet; nothing to answer.")
    subject = reminder.subject
    ack = DoseAcknowledgement(
        patient_id=reminder.patient_id,
        medication_id=int(subject["medication_id"]),
        slot_key=str(subject["slot_key"]),
        user_id=reminder.user_id,
        reminder_id=reminder.id,
        at=at,
    )
    try:
        with db.begin_nested():
            db.add(ack)
    except IntegrityError:
        pass  # someone else was first: the alert's view shows who
    on_acknowledged(db, reminder)
