"""Logging doses: match to the scheduled slot, idempotent by the phone's id, undo, correct."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import ServiceError
from backend.models import DoseLog, Medication, Patient, User
from backend.reminders.doses import on_dose_logged
from backend.reminders.planner import replan_for_medication
from backend.reminders.timeline import (
    DOSE_KINDS,
    LATE_AFTER,
    LATE_AFTER_CRITICAL,
    MATCH_EARLY,
    MATCH_LATE,
    MISSED_AFTER,
)
from backend.schedule import Occurrence
from backend.schedule.medicines import occurrences, prn_status
from backend.services import adherence_snapshots, prn
from notifications.outbox import REPLANNED, recancel

# A report may carry a clock slightly ahead of ours, never a dose in the future.
FUTURE_SLACK = timedelta(minutes=5)
# A mis-tap can be undone by its author for this long; later, correct it instead.
UNDO_WINDOW = timedelta(minutes=10)
# A panel stores a day's tally only once every slot of it is MISSED_AFTER past its own clock,
# which runs at most this far ahead of ours while it reads logs that miss ours (its request
# began before we commit; a request takes seconds): a dose logged earlier than that before
# its slot settles cannot be missing from a stored day.
_SETTLE_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Report:
    client_id: str
    status: str  # taken | taken_late | skipped
    taken_at: datetime
    slot_key: str | None = None
    skip_reason: str | None = None


def live_logs(
    db: Session, medication_ids: list[int], start: datetime, end: datetime
) -> list[DoseLog]:
    if not medication_ids:
        return []
    return list(
        db.scalars(
            select(DoseLog).where(
                DoseLog.medication_id.in_(medication_ids),
                DoseLog.undone_at.is_(None),
                DoseLog.taken_at >= start,
                DoseLog.taken_at < end,
            )
        )
    )


def _late_after(med: Medication) -> timedelta:
    return LATE_AFTER_CRITICAL if med.time_critical else LATE_AFTER


def _logged_slots(db: Session, med: Medication, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = db.scalars(
        select(DoseLog.slot_key).where(
            DoseLog.medication_id == med.id,
            DoseLog.undone_at.is_(None),
            DoseLog.slot_key.in_(keys),
        )
    )
    return {k for k in rows if k is not None}


def _match(db: Session, med: Medication, patient: Patient, report: Report) -> Occurrence | None:
    at = report.taken_at
    if report.slot_key is not None:
        window = occurrences(med, patient, at - timedelta(days=2), at + timedelta(days=2))
        slot = next((o for o in window if o.slot_key == report.slot_key), None)
        if slot is None:
            raise ServiceError(
                422, "No scheduled dose with this slot near that time.", field="slot_key"
            )
        # tomorrow's dose cannot be taken tonight (it can be skipped ahead: "not tonight")
        if report.status != "skipped" and slot.at > at + MATCH_EARLY:
            raise ServiceError(
                422,
                "This scheduled dose is not due yet; log it when it is taken.",
                field="slot_key",
            )
        if _logged_slots(db, med, [slot.slot_key]):
            raise ServiceError(
                409, "This scheduled dose is already logged; correct that log instead."
            )
        return slot
    candidates = occurrences(med, patient, at - MATCH_LATE, at + MATCH_EARLY)
    taken = _logged_slots(db, med, [o.slot_key for o in candidates])
    open_slots = [o for o in candidates if o.slot_key not in taken]
    if not open_slots:
        return None
    return min(open_slots, key=lambda o: (abs((o.at - at).total_seconds()), o.at))


def log_dose(
    db: Session, med: Medication, patient: Patient, by: User, report: Report
) -> tuple[DoseLog, bool]:
    """Returns (log, created). The same client id again returns the first record unchanged."""
    existing = _by_client_id(db, patient.id, report.client_id)
    if existing is not None:
        return _replayed(existing, med, report), False
    if report.taken_at > now() + FUTURE_SLACK:
        raise ServiceError(422, "A dose cannot be logged in the future.", field="taken_at")
    slot = _match(db, med, patient, report)
    taking = report.status != "skipped"
    if not taking and slot is None:
        raise ServiceError(
            422, "A skip answers a scheduled dose; none is open near that time.", field="slot_key"
        )
    log = DoseLog(
        patient_id=patient.id,
        medication_id=med.id,
        client_id=report.client_id,
        status="taken" if taking else "skipped",
        slot_key=slot.slot_key if slot else None,
        scheduled_at=slot.at if slot else None,
        taken_at=report.taken_at,
        skip_reason=report.skip_reason,
        logged_by_user_id=by.id,
        on_behalf=patient.user_id != by.id,
        logged_at=now(),
        corrections=[],
    )
    log.late = _is_late(med, log, report.status == "taken_late")
    over_max = 0  # with this one, the doses in 24 h when that is over the maximum
    if taking and med.as_needed:
        recent = live_logs(db, [med.id], report.taken_at - timedelta(hours=24), report.taken_at)
        status = prn_status(med, recent, report.taken_at)
        log.over_limit = not status.available_now  # recorded all the same: the truth matters
        if status.max_per_24h is not None and status.taken_last_24h >= status.max_per_24h:
            over_max = status.taken_last_24h + 1
    if taking and med.quantity_on_hand is not None:
        med.quantity_on_hand = max(0.0, med.quantity_on_hand - med.dose_amount)
    try:
        with db.begin_nested():
            db.add(log)
    except IntegrityError:  # the same report arrived twice at once
        replay = _by_client_id(db, patient.id, report.client_id)
        if replay is None:
            raise
        return _replayed(replay, med, report), False
    if log.slot_key is not None:
        on_dose_logged(db, patient.id, med.id, log.slot_key)
        # extra doses do not count; a dose logged while its slot is still open (or ahead)
        # cannot touch a stored day: those are settled days only
        adherence_snapshots.invalidate(db, [patient.id], settled_days=_settled(log))
    if over_max:
        prn.over_the_maximum(db, med, patient, log, over_max, now())
    return log, True


def _settled(log: DoseLog) -> bool:
    """Whether the log's slot may be settled already, for a panel computing at most
    :data:`_SETTLE_SLACK` after this instant (``scheduled_at`` is the slot's instant now)."""
    return log.scheduled_at is None or log.scheduled_at + MISSED_AFTER <= now() + _SETTLE_SLACK


def _is_late(med: Medication, log: DoseLog, said_late: bool) -> bool:
    if log.status != "taken":
        return False
    if said_late:
        return True
    return log.scheduled_at is not None and log.taken_at > log.scheduled_at + _late_after(med)


def _replayed(log: DoseLog, med: Medication, report: Report) -> DoseLog:
    """The first record for a resent report; a different report under the same client id is a
    conflict, not a silent 200 with the first one (an idempotency key names one request)."""
    same = (
        log.medication_id == med.id
        and log.status == ("skipped" if report.status == "skipped" else "taken")
        and abs((log.taken_at - report.taken_at).total_seconds()) < 1
        and (report.slot_key is None or report.slot_key == log.slot_key)
        and (report.status != "taken_late" or log.late)
    )
    if not same:
        raise ServiceError(
            409,
            "This client_id was already used for a different dose report; "
            "use a new client_id for a new report.",
            field="client_id",
        )
    return log


def _by_client_id(db: Session, patient_id: int, client_id: str) -> DoseLog | None:
    return db.scalar(
        select(DoseLog).where(DoseLog.patient_id == patient_id, DoseLog.client_id == client_id)
    )


def undo(db: Session, med: Medication, log: DoseLog, by: User) -> None:
    """Undo a mis-tap (its author, within :data:`UNDO_WINDOW`): the log stays, marked undone;
    the supply it took is given back and the slot's reminders still ahead are planned again
    (:func:`reminders_back`), all in the caller's transaction."""
    if not log.is_live:
        raise ServiceError(409, "This log was already undone.")
    if log.logged_by_user_id != by.id or now() - log.logged_at > UNDO_WINDOW:
        raise ServiceError(409, "Too late to undo (or not your log); send a correction instead.")
    log.undone_at = now()
    adherence_snapshots.invalidate(db, [log.patient_id])
    if log.status == "taken" and med.quantity_on_hand is not None:
        med.quantity_on_hand += med.dose_amount
    if log.slot_key is not None:
        # The slot is open again: its reminders still ahead come back (after the supply
        # change above, so the re-plan sees it).
        db.flush()
        reminders_back(db, log.patient_id, med.id, log.slot_key, log.undone_at)


def reminders_back(
    db: Session, patient_id: int, medication_id: int, slot_key: str, at: datetime | None = None
) -> int:
    """A dose log was undone: the slot's reminders still ahead come back, in the caller's
    transaction; returns how many cancelled rows were handed back to the planner.

    Logging cancelled them (reason ``dose_logged``, ``backend.reminders.doses.on_dose_logged``)
    and those rows keep their dedupe keys, so planning the slot again would insert nothing
    (``ON CONFLICT DO NOTHING``); and flipping them straight back to ``pending`` would revive
    what may no longer hold (a caregiver whose access ended since, a step of a chain changed
    since, a medicine paused since). So the slot's ``dose_logged`` rows due from ``at`` on are
    handed to the planner instead: a conditional UPDATE makes them cancelled by a re-plan
    (``replanned``, ``notifications.outbox.recancel``), and ``replan_for_medication`` plans
    the medicine again, whose upsert revives -- back to ``pending`` with their planned times --
    exactly the keys it still plans, and leaves the rest cancelled. Rows due before ``at``
    (the reminder of a dose whose time passed) stay ``dose_logged``: the planner never plans
    a step in the past. Rows cancelled for another reason ("I'm on it", access revoked) stay
    as they are, and a correction keeps the log live, so it changes nothing here.
    """
    at = at or now()
    handed = recancel(
        db,
        was="dose_logged",
        reason=REPLANNED,
        patient_id=patient_id,
        kinds=DOSE_KINDS,
        subject={"medication_id": medication_id, "slot_key": slot_key},
        due_from=at,
    )
    # Always, not only when rows were handed: a chain changed since the log may have steps
    # the slot never had.
    replan_for_medication(db, medication_id, at)
    return handed


def correct(
    db: Session, med: Medication, log: DoseLog, by: User, changes: dict[str, Any]
) -> DoseLog:
    """Change a log after the fact; the before and after are kept on the row."""
    if not log.is_live:
        raise ServiceError(409, "This log was undone; log the dose again instead.")
    if "taken_at" in changes and changes["taken_at"] > now() + FUTURE_SLACK:
        raise ServiceError(422, "A dose cannot be logged in the future.", field="taken_at")
    before = {
        "status": log.status,
        "taken_at": log.taken_at.isoformat(),
        "skip_reason": log.skip_reason,
        "late": log.late,
    }
    new_status = changes.get("status", log.status)
    was_taken = log.status == "taken"
    log.status = "skipped" if new_status == "skipped" else "taken"
    log.taken_at = changes.get("taken_at", log.taken_at)
    if "skip_reason" in changes:
        log.skip_reason = changes["skip_reason"]
    log.late = _is_late(med, log, new_status == "taken_late")
    if med.quantity_on_hand is not None and was_taken != (log.status == "taken"):
        delta = med.dose_amount if was_taken else -med.dose_amount
        med.quantity_on_hand = max(0.0, med.quantity_on_hand + delta)
    after = {
        "status": log.status,
        "taken_at": log.taken_at.isoformat(),
        "skip_reason": log.skip_reason,
        "late": log.late,
    }
    log.corrections = [
        *log.corrections,
        {"at": now().isoformat(), "by_user_id": by.id, "from": before, "to": after},
    ]
    adherence_snapshots.invalidate(db, [log.patient_id])
    return log
