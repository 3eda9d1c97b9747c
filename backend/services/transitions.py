"""Care transitions: recording a discharge and its checklist, hospital and ER encounters,
the sweep rules that watch the checklist, and the readmission report.

The checklist a discharge starts (due times from the discharge instant):

==========================  ===========  ================================================
task                        due          done when
==========================  ===========  ================================================
medication_reconciliation   + 2 days     every medication change is applied to the
                                         medicine list (backend/services/reconciliation.py)
                                         and acknowledged by the patient or a caregiver who
                                         manages medicines (no changes: done at once)
follow_up_appointment       + 7 days     a visit (in person, telehealth or a home visit;
                                         a lab draw is not a follow-up) booked or completed
                                         with its start in (discharge, discharge + 7 days];
                                         none by day 2 raises a ``no_follow_up`` item
call_48h                    + 48 hours   the care team resolves the ``transition_task``
                                         worklist item raised when the discharge is recorded
readmission_check (day N)   day N 10:00  the patient answers the POST-DISCHARGE check-in
                            local + 2 d  ("any hospital or ER visit since discharge?")
                                         scheduled for day N = 7, 14 and 30
==========================  ===========  ================================================

Tasks that are done by something happening elsewhere (an appointment booked, an item
resolved, a check-in answered) are observed: :func:`observe` works out what completed them,
read-only, for the checklist view; the sweep rules (run by
``backend.services.sweep``) store it and raise or close the worklist items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import ServiceError, invalid
from backend.models import (
    Appointment,
    CheckinResponse,
    Discharge,
    Encounter,
    Medication,
    MedicationChange,
    Patient,
    TransitionTask,
    User,
    WorkItem,
)
from backend.models.checkin import TemplateKey
from backend.services.checkin_schedules import EARLY, schedule_checkin
from backend.services.worklist import raise_work_item, resolve_by_system
from notifications.texts import translations

log = logging.getLogger(__name__)

RECONCILE_WITHIN = timedelta(days=2)
CALL_WITHIN = timedelta(hours=48)
# Transitional care: a visit within 7 days; if none is booked by day 2 someone should act.
FOLLOW_UP_WITHIN = timedelta(days=7)
FOLLOW_UP_FLAG_AFTER = timedelta(days=2)
FOLLOW_UP_TYPES = ("in_person", "telehealth", "home_visit")
FOLLOW_UP_STATUSES = ("booked", "completed")
CHECK_DAYS = (7, 14, 30)
CHECK_TEMPLATE = "POST-DISCHARGE"
CHECK_LOCAL_TIME = time(10, 0)  # mid-morning in the patient's zone, not the discharge hour
CHECK_ANSWER_WITHIN = timedelta(days=2)
READMISSION_WINDOW = timedelta(days=30)
# Every task is due by day 32; the sweep stops looking at discharges older than this.
SWEEP_HORIZON = timedelta(days=40)

TASK_COMPLETED_BY = {
    "medication_reconciliation": "Each medication change applied to the medicine list and "
    "acknowledged by the patient or a caregiver who manages their medicines",
    "follow_up_appointment": "A visit (in person, telehealth or home visit) booked within 7 "
    "days of discharge",
    "call_48h": "The care team resolves the 48-hour call item on the worklist",
    "readmission_check": "The patient answers the POST-DISCHARGE check-in",
}
ENCOUNTER_WORDS = {
    "hospital_admission": "Hospital admission",
    "er_visit": "ER visit",
    "observation": "Observation stay",
}


def call_key(discharge_id: int) -> str:
    return f"transition:{discharge_id}:call_48h"


def reconciliation_key(discharge_id: int) -> str:
    return f"transition:{discharge_id}:medication_reconciliation"


def follow_up_key(discharge_id: int) -> str:
    return f"no_follow_up:{discharge_id}"


# --- recording -----------------------------------------------------------------------------


def record_discharge(
    db: Session, patient: Patient, by: User, reported_by: str, data: dict[str, Any]
) -> Discharge:
    """A discharge (``data`` as the API schema loads it), its hospital encounter, its
    medication changes and its checklist; the 48-hour call goes on the worklist at once."""
    changes: list[dict[str, Any]] = data.get("medication_changes") or []
    _check_medications(db, patient.id, changes)
    at = now()
    encounter = _stay(db, patient, by, reported_by, data, at)
    discharge = Discharge(
        patient_id=patient.id,
        encounter_id=encounter.id,
        facility=data["facility"],
        # Known when given, or from the stay recorded before; a new stay without it is only
        # dated by its end (see _stay), which is not an admission time to show.
        admitted_at=data.get("admitted_at")
        or (encounter.start_at if data.get("encounter_id") is not None else None),
        discharged_at=data["discharged_at"],
        reason=data.get("reason"),
        recorded_by_user_id=by.id,
        recorded_at=at,
    )
    db.add(discharge)
    db.flush()
    for change in changes:
        db.add(MedicationChange(discharge_id=discharge.id, **change))
    _start_checklist(db, patient, discharge, bool(changes), by, at)
    flag_encounter(db, encounter)  # a stay that began soon after an earlier discharge
    db.flush()
    return discharge


def _check_medications(db: Session, patient_id: int, changes: list[dict[str, Any]]) -> None:
    wanted = {c["medication_id"] for c in changes if c.get("medication_id") is not None}
    theirs = set(
        db.scalars(
            select(Medication.id).where(
                Medication.id.in_(wanted), Medication.patient_id == patient_id
            )
        )
    )
    errors = {
        str(i): {"medication_id": ["No such medication for this patient."]}
        for i, c in enumerate(changes)
        if c.get("medication_id") is not None and c["medication_id"] not in theirs
    }
    if errors:
        raise invalid({"medication_changes": errors})


def _stay(
    db: Session, patient: Patient, by: User, reported_by: str, data: dict[str, Any], at: datetime
) -> Encounter:
    """The hospital_admission the discharge ends: the one named, or a new one."""
    if data.get("encounter_id") is None:
        encounter = Encounter(
            patient_id=patient.id,
            kind="hospital_admission",
            facility=data["facility"],
            # Without an admission time the stay is dated by its end (the latest it began).
            start_at=data.get("admitted_at") or data["discharged_at"],
            end_at=data["discharged_at"],
            reason=data.get("reason"),
            reported_by=reported_by,
            recorded_by_user_id=by.id,
            recorded_at=at,
        )
        db.add(encounter)
        db.flush()
        return encounter
    found = db.get(Encounter, data["encounter_id"])
    problem = None
    if found is None or found.patient_id != patient.id:
        problem = "No such encounter for this patient."
    elif found.kind != "hospital_admission":
        problem = "A discharge ends a hospital_admission encounter."
    elif db.scalar(select(Discharge.id).where(Discharge.encounter_id == found.id)) is not None:
        problem = "This stay already has a discharge."
    elif found.start_at > data["discharged_at"]:
        problem = "The stay began after this discharge."
    if problem is not None:
        raise invalid({"encounter_id": [problem]})
    assert found is not None
    if data.get("admitted_at") is not None:
        found.start_at = data["admitted_at"]
    found.end_at = data["discharged_at"]
    return found


def _start_checklist(
    db: Session, patient: Patient, d: Discharge, has_changes: bool, by: User, at: datetime
) -> None:
    start = d.discharged_at
    reconciliation = TransitionTask(
        discharge_id=d.id,
        patient_id=d.patient_id,
        kind="medication_reconciliation",
        day=0,
        due_at=start + RECONCILE_WITHIN,
    )
    if not has_changes:
        reconciliation.done_at, reconciliation.done_by_user_id = at, by.id
        reconciliation.note = "No medication changes recorded."
    call = TransitionTask(
        discharge_id=d.id,
        patient_id=d.patient_id,
        kind="call_48h",
        day=0,
        due_at=start + CALL_WITHIN,
    )
    db.add_all(
        [
            reconciliation,
            TransitionTask(
                discharge_id=d.id,
                patient_id=d.patient_id,
                kind="follow_up_appointment",
                day=0,
                due_at=start + FOLLOW_UP_WITHIN,
            ),
            call,
        ]
    )
    for day in CHECK_DAYS:
        prompt_at = check_prompt_at(d, patient.time_zone, day)
        db.add(
            TransitionTask(
                discharge_id=d.id,
                patient_id=d.patient_id,
                kind="readmission_check",
                day=day,
                due_at=prompt_at + CHECK_ANSWER_WITHIN,
                checkin_schedule_id=_schedule_check(db, d, prompt_at, by.id),
            )
        )
    db.flush()
    item = _raise_call(db, d, call, at)
    call.work_item_id = item.id if item is not None else None


def check_prompt_at(d: Discharge, zone: str, day: int) -> datetime:
    local = d.discharged_at.astimezone(ZoneInfo(zone)).date() + timedelta(days=day)
    return datetime.combine(local, CHECK_LOCAL_TIME, tzinfo=ZoneInfo(zone))


def _schedule_check(db: Session, d: Discharge, prompt_at: datetime, by_user_id: int) -> int | None:
    """The POST-DISCHARGE check-in for one day, through the check-in module's scheduler;
    None when it cannot be scheduled (the day is already past, the template is missing):
    the task stays, and the sweep schedules it once it can."""
    try:
        schedule = schedule_checkin(
            db,
            patient_id=d.patient_id,
            template_code=CHECK_TEMPLATE,
            timing={"event": [prompt_at.isoformat()]},
            answer_within=CHECK_ANSWER_WITHIN,
            expires_at=prompt_at + CHECK_ANSWER_WITHIN,
            created_by_user_id=by_user_id,
            note=f"After discharge from {d.facility}",
        )
    except ServiceError as exc:
        log.info("no POST-DISCHARGE check-in for discharge %s: %s", d.id, exc)
        return None
    return int(schedule.id)


def _raise_call(db: Session, d: Discharge, task: TransitionTask, at: datetime) -> WorkItem | None:
    return raise_work_item(
        db,
        patient_id=d.patient_id,
        kind="transition_task",
        key=call_key(d.id),
        title=f"48-hour call after discharge from {d.facility}",
        detail={"discharge_id": d.id, "task": "call_48h", "due_at": task.due_at.isoformat()},
        evidence_at=d.discharged_at,
        at=at,
    )


def record_encounter(
    db: Session, patient: Patient, by: User, reported_by: str, data: dict[str, Any]
) -> Encounter:
    encounter = Encounter(
        patient_id=patient.id,
        reported_by=data.get("reported_by") or reported_by,
        recorded_by_user_id=by.id,
        recorded_at=now(),
        kind=data["kind"],
        facility=data["facility"],
        start_at=data["start_at"],
        end_at=data.get("end_at"),
        reason=data.get("reason"),
    )
    db.add(encounter)
    db.flush()
    flag_encounter(db, encounter)
    return encounter


def index_discharge_before(db: Session, encounter: Encounter) -> Discharge | None:
    """The latest discharge whose 30-day window holds the encounter's start (not its own)."""
    return db.scalar(
        select(Discharge)
        .where(
            Discharge.patient_id == encounter.patient_id,
            Discharge.encounter_id != encounter.id,
            Discharge.discharged_at < encounter.start_at,
            Discharge.discharged_at >= encounter.start_at - READMISSION_WINDOW,
        )
        .order_by(Discharge.discharged_at.desc())
        .limit(1)
    )


def flag_encounter(db: Session, encounter: Encounter) -> WorkItem | None:
    """A return to hospital within 30 days of a discharge goes on the care team's worklist."""
    index = index_discharge_before(db, encounter)
    if index is None:
        return None
    days = (encounter.start_at - index.discharged_at).days
    what = ENCOUNTER_WORDS[encounter.kind]
    return raise_work_item(
        db,
        patient_id=encounter.patient_id,
        kind="encounter",
        key=f"encounter:{encounter.id}",
        title=translations("en").ngettext(
            "%(what)s at %(facility)s %(num)d day after discharge from %(from)s",
            "%(what)s at %(facility)s %(num)d days after discharge from %(from)s",
            days,
        )
        % {"what": what, "facility": encounter.facility, "num": days, "from": index.facility},
        detail={
            "encounter_id": encounter.id,
            "encounter_kind": encounter.kind,
            "discharge_id": index.id,
            "days_after_discharge": days,
        },
        evidence_at=encounter.start_at,
    )


def acknowledge_change(db: Session, change: MedicationChange, by: User) -> MedicationChange:
    """The patient's side has seen the change; the last one completes the reconciliation.
    Acknowledging again keeps the first acknowledgement (a conditional UPDATE: of two people
    acknowledging at once, one is recorded)."""
    db.execute(
        update(MedicationChange)
        .where(MedicationChange.id == change.id, MedicationChange.acknowledged_at.is_(None))
        .values(acknowledged_by_user_id=by.id, acknowledged_at=now())
        .execution_options(synchronize_session=False)
    )
    db.refresh(change)
    complete_reconciliation(db, change.discharge_id)
    return change


def complete_reconciliation(db: Session, discharge_id: int) -> None:
    """Mark the discharge's reconciliation task done if every change is now applied and
    acknowledged (and close its worklist item)."""
    task = db.scalar(
        select(TransitionTask).where(
            TransitionTask.discharge_id == discharge_id,
            TransitionTask.kind == "medication_reconciliation",
            TransitionTask.done_at.is_(None),
        )
    )
    if task is not None:
        done = _observe_reconciliations(db, [task]).get(task.id)
        if done is not None:
            _complete(db, task, done)


def _complete(db: Session, task: TransitionTask, done: Completion) -> None:
    """Store what completed the task, and close the worklist item it no longer needs."""
    task.done_at, task.done_by_user_id, task.note = done.done_at, done.done_by_user_id, done.note
    if done.appointment_id is not None:
        task.appointment_id = done.appointment_id
    keys = {
        "medication_reconciliation": (
            reconciliation_key(task.discharge_id),
            "Every medication change was applied and acknowledged.",
        ),
        "follow_up_appointment": (
            follow_up_key(task.discharge_id),
            f"Follow-up booked: appointment {done.appointment_id}.",
        ),
    }
    if task.kind in keys:
        key, note = keys[task.kind]
        resolve_by_system(db, task.patient_id, key, note)


# --- observing what completes a task -------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    done_at: datetime
    done_by_user_id: int | None
    note: str | None = None
    appointment_id: int | None = None


def observe(
    db: Session, tasks: Sequence[TransitionTask], discharges: dict[int, Discharge]
) -> dict[int, Completion]:
    """What completed each pending task, by task id (read-only; a few queries per batch)."""
    pending = [t for t in tasks if t.done_at is None]
    found: dict[int, Completion] = {}
    found.update(
        _observe_follow_ups(
            db, [t for t in pending if t.kind == "follow_up_appointment"], discharges
        )
    )
    found.update(_observe_calls(db, [t for t in pending if t.kind == "call_48h"]))
    found.update(
        _observe_reconciliations(db, [t for t in pending if t.kind == "medication_reconciliation"])
    )
    found.update(_observe_checks(db, [t for t in pending if t.kind == "readmission_check"]))
    return found


def _observe_follow_ups(
    db: Session, tasks: list[TransitionTask], discharges: dict[int, Discharge]
) -> dict[int, Completion]:
    if not tasks:
        return {}
    windows = {t.id: discharges[t.discharge_id].discharged_at for t in tasks}
    visits = db.scalars(
        select(Appointment)
        .where(
            Appointment.patient_id.in_({t.patient_id for t in tasks}),
            Appointment.type.in_(FOLLOW_UP_TYPES),
            Appointment.status.in_(FOLLOW_UP_STATUSES),
            Appointment.start_at > min(windows.values()),
            Appointment.start_at <= max(windows.values()) + FOLLOW_UP_WITHIN,
        )
        .order_by(Appointment.start_at, Appointment.id)
    ).all()
    found: dict[int, Completion] = {}
    for task in tasks:
        start = windows[task.id]
        visit = next(
            (
                a
                for a in visits
                if a.patient_id == task.patient_id
                and start < a.start_at <= start + FOLLOW_UP_WITHIN
            ),
            None,
        )
        if visit is not None:
            found[task.id] = Completion(
                done_at=max(visit.created_at, start),
                done_by_user_id=visit.created_by_user_id,
                note="Follow-up visit booked.",
                appointment_id=visit.id,
            )
    return found


def _observe_reconciliations(db: Session, tasks: list[TransitionTask]) -> dict[int, Completion]:
    """Done when every change of the discharge is applied to the medicine list and
    acknowledged at home: at the last of those steps, by its author (also what the sweep finds
    when two people took the last two steps at the same time)."""
    if not tasks:
        return {}
    changes: dict[int, list[MedicationChange]] = {t.discharge_id: [] for t in tasks}
    for c in db.scalars(select(MedicationChange).where(MedicationChange.discharge_id.in_(changes))):
        changes[c.discharge_id].append(c)
    found: dict[int, Completion] = {}
    for task in tasks:
        mine = changes[task.discharge_id]
        steps = [
            (at, by)
            for c in mine
            for at, by in (
                (c.applied_at, c.applied_by_user_id),
                (c.acknowledged_at, c.acknowledged_by_user_id),
            )
        ]
        if mine and all(at is not None for at, _ in steps):
            last_at, last_by = max(steps, key=lambda s: s[0] or now())
            assert last_at is not None
            found[task.id] = Completion(
                last_at, last_by, "Every medication change applied and acknowledged."
            )
    return found


def _observe_calls(db: Session, tasks: list[TransitionTask]) -> dict[int, Completion]:
    ids = {t.work_item_id for t in tasks if t.work_item_id is not None}
    if not ids:
        return {}
    items = {
        i.id: i
        for i in db.scalars(
            select(WorkItem).where(WorkItem.id.in_(ids), WorkItem.status == "resolved")
        )
    }
    found: dict[int, Completion] = {}
    for task in tasks:
        item = items.get(task.work_item_id or 0)
        if item is not None and item.resolved_at is not None:
            # Not the coordinator's note: the checklist is read on the patient's side, and
            # what was said on the call stays on the worklist (care team only).
            found[task.id] = Completion(item.resolved_at, item.resolved_by_user_id, CALL_DONE)
    return found


CALL_DONE = "48-hour call made."


def _observe_checks(db: Session, tasks: list[TransitionTask]) -> dict[int, Completion]:
    """An answer to POST-DISCHARGE given in the day's prompt window completes that day's
    check: from an hour before the prompt (``due_at - CHECK_ANSWER_WITHIN``) to ``due_at``,
    as the check-in module counts an answer for a prompt."""
    if not tasks:
        return {}
    opens = {t.id: t.due_at - CHECK_ANSWER_WITHIN - EARLY for t in tasks}
    answers = db.scalars(
        select(CheckinResponse)
        .where(
            CheckinResponse.patient_id.in_({t.patient_id for t in tasks}),
            CheckinResponse.of_template(TemplateKey(None, CHECK_TEMPLATE)),
            CheckinResponse.at >= min(opens.values()),
            CheckinResponse.at <= max(t.due_at for t in tasks),
        )
        .order_by(CheckinResponse.at, CheckinResponse.id)
    ).all()
    found: dict[int, Completion] = {}
    for task in tasks:
        answer = next(
            (
                a
                for a in answers
                if a.patient_id == task.patient_id and opens[task.id] <= a.at <= task.due_at
            ),
            None,
        )
        if answer is not None:
            found[task.id] = Completion(answer.at, answer.answered_by_user_id, "Check-in answered")
    return found


# --- the sweep rules -----------------------------------------------------------------------


@dataclass
class _Batch:
    tasks: list[TransitionTask] = field(default_factory=list)
    discharges: dict[int, Discharge] = field(default_factory=dict)


def _recent(db: Session, at: datetime, patient_ids: Sequence[int], kinds: Iterable[str]) -> _Batch:
    """Tasks of the given kinds of the patients' discharges within the sweep horizon."""
    rows = db.execute(
        select(TransitionTask, Discharge)
        .join(Discharge, Discharge.id == TransitionTask.discharge_id)
        .where(
            TransitionTask.patient_id.in_(list(patient_ids)),
            TransitionTask.kind.in_(list(kinds)),
            Discharge.discharged_at >= at - SWEEP_HORIZON,
            Discharge.discharged_at <= at,
        )
        .order_by(TransitionTask.id)
    ).all()
    batch = _Batch()
    for task, discharge in rows:
        batch.tasks.append(task)
        batch.discharges[discharge.id] = discharge
    return batch


def follow_up_rule(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    """``no_follow_up``: no visit booked 2 days after a discharge opens an item; a visit booked
    closes it (by the system); a follow-up whose visit was cancelled is open again."""
    batch = _recent(db, at, patient_ids, ["follow_up_appointment"])
    reopened = _reopen_cancelled(db, batch)
    pending = [t for t in batch.tasks if t.done_at is None]
    completions = observe(db, pending, batch.discharges)
    for task in pending:
        discharge = batch.discharges[task.discharge_id]
        key = follow_up_key(discharge.id)
        if task.id in completions:
            _complete(db, task, completions[task.id])
            continue
        flag_at = discharge.discharged_at + FOLLOW_UP_FLAG_AFTER
        if at >= flag_at:
            raise_work_item(
                db,
                patient_id=task.patient_id,
                kind="no_follow_up",
                key=key,
                title=f"No follow-up booked 2 days after discharge from {discharge.facility}",
                detail={
                    "discharge_id": discharge.id,
                    "discharged_at": discharge.discharged_at.isoformat(),
                    "book_by": task.due_at.isoformat(),
                },
                # A visit cancelled after the item was closed is new evidence.
                evidence_at=max(flag_at, reopened.get(task.id, flag_at)),
                at=at,
            )


def _reopen_cancelled(db: Session, batch: _Batch) -> dict[int, datetime]:
    """Done follow-ups whose visit is no longer booked are pending again: task id -> when."""
    linked = {t.appointment_id for t in batch.tasks if t.appointment_id is not None}
    if not linked:
        return {}
    gone = {
        a.id: a
        for a in db.scalars(
            select(Appointment).where(
                Appointment.id.in_(linked), Appointment.status.not_in(FOLLOW_UP_STATUSES)
            )
        )
    }
    reopened: dict[int, datetime] = {}
    for task in batch.tasks:
        visit = gone.get(task.appointment_id or 0)
        if visit is not None:
            task.done_at = task.done_by_user_id = task.appointment_id = None
            task.note = f"The follow-up visit was {visit.status.replace('_', ' ')}."
            reopened[task.id] = visit.updated_at
    return reopened


def transition_task_rule(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    """``transition_task``: stores the 48-hour calls resolved and the check-ins answered,
    schedules a check-in that could not be scheduled before, raises the call item if it is
    missing, and an item for a reconciliation past due."""
    batch = _recent(
        db, at, patient_ids, ["call_48h", "readmission_check", "medication_reconciliation"]
    )
    pending = [t for t in batch.tasks if t.done_at is None]
    completions = observe(db, pending, batch.discharges)
    for task in pending:
        discharge = batch.discharges[task.discharge_id]
        if task.id in completions:
            _complete(db, task, completions[task.id])
        elif task.kind == "readmission_check" and task.checkin_schedule_id is None:
            prompt_at = task.due_at - CHECK_ANSWER_WITHIN
            if prompt_at > at:
                task.checkin_schedule_id = _schedule_check(
                    db, discharge, prompt_at, discharge.recorded_by_user_id
                )
        elif task.kind == "call_48h" and task.work_item_id is None:
            item = _raise_call(db, discharge, task, at)
            task.work_item_id = item.id if item is not None else None
        elif task.kind == "medication_reconciliation" and at >= task.due_at:
            raise_work_item(
                db,
                patient_id=task.patient_id,
                kind="transition_task",
                key=reconciliation_key(discharge.id),
                title=f"Medication changes after discharge from {discharge.facility} "
                "not yet reconciled",
                detail={
                    "discharge_id": discharge.id,
                    "task": "medication_reconciliation",
                    "due_at": task.due_at.isoformat(),
                },
                evidence_at=task.due_at,
                at=at,
            )


# --- the checklist and the report ----------------------------------------------------------


def task_status(task: TransitionTask, done: Completion | None, at: datetime) -> str:
    if task.done_at is not None or done is not None:
        return "done"
    return "overdue" if at > task.due_at else "pending"


def checklist(
    db: Session, discharges: Sequence[Discharge], at: datetime
) -> dict[int, list[dict[str, Any]]]:
    """Each discharge's tasks as the API shows them, what is observed done included."""
    if not discharges:
        return {}
    by_id = {d.id: d for d in discharges}
    tasks = db.scalars(
        select(TransitionTask)
        .where(TransitionTask.discharge_id.in_(by_id))
        .order_by(TransitionTask.due_at, TransitionTask.id)
    ).all()
    completions = observe(db, tasks, by_id)
    views: dict[int, list[dict[str, Any]]] = {d.id: [] for d in discharges}
    for task in tasks:
        done = completions.get(task.id)
        views[task.discharge_id].append(
            {
                "id": task.id,
                "kind": task.kind,
                "day": task.day or None,
                "due_at": task.due_at,
                "status": task_status(task, done, at),
                "done_at": done.done_at if done else task.done_at,
                "done_by_user_id": done.done_by_user_id if done else task.done_by_user_id,
                "note": done.note if done else task.note,
                "completed_by": TASK_COMPLETED_BY[task.kind],
                "work_item_id": task.work_item_id,
                "appointment_id": done.appointment_id if done else task.appointment_id,
                "checkin_schedule_id": task.checkin_schedule_id,
            }
        )
    return views


def report(db: Session, patient_ids: Sequence[int], at: datetime, days: int) -> dict[str, Any]:
    """30-day readmission and ER-visit rates over the index discharges of the last ``days``
    days. Every discharge in the period is an index discharge, its 30-day window closed or
    still open (``window_open``: the counts for it can still grow)."""
    start = at - timedelta(days=days)
    rows = db.execute(
        select(Discharge, Patient.display_name)
        .join(Patient, Patient.id == Discharge.patient_id)
        .where(
            Discharge.patient_id.in_(list(patient_ids)),
            Discharge.discharged_at > start,
            Discharge.discharged_at <= at,
        )
        .order_by(Discharge.discharged_at, Discharge.id)
    ).all()
    encounters = []
    if rows:
        encounters = list(
            db.scalars(
                select(Encounter)
                .where(
                    Encounter.patient_id.in_({d.patient_id for d, _ in rows}),
                    Encounter.kind.in_(("hospital_admission", "er_visit")),
                    Encounter.start_at > min(d.discharged_at for d, _ in rows),
                    Encounter.start_at <= at,
                )
                .order_by(Encounter.start_at, Encounter.id)
            )
        )
    lines = [_report_line(d, name, encounters, at) for d, name in rows]
    readmitted = sum(1 for line in lines if line["readmissions"])
    er = sum(1 for line in lines if line["er_visits"])
    return {
        "days": days,
        "from": start,
        "to": at,
        "window_days": READMISSION_WINDOW.days,
        "index_discharges": len(lines),
        "open_windows": sum(1 for line in lines if line["window_open"]),
        "readmission": _rate(readmitted, len(lines)),
        "er_visit": _rate(er, len(lines)),
        "discharges": lines,
    }


def _rate(count: int, of: int) -> dict[str, Any]:
    return {"numerator": count, "denominator": of, "rate": round(count / of, 4) if of else None}


def _report_line(
    d: Discharge, name: str, encounters: list[Encounter], at: datetime
) -> dict[str, Any]:
    end = d.discharged_at + READMISSION_WINDOW
    within = [
        e
        for e in encounters
        if e.patient_id == d.patient_id
        and e.id != d.encounter_id
        and d.discharged_at < e.start_at <= end
    ]

    def brief(e: Encounter) -> dict[str, Any]:
        return {"encounter_id": e.id, "facility": e.facility, "start": e.start_at}

    return {
        "patient_id": d.patient_id,
        "patient_name": name,
        "discharge_id": d.id,
        "facility": d.facility,
        "discharged_at": d.discharged_at,
        "window_ends_at": end,
        "window_open": at < end,
        "readmissions": [brief(e) for e in within if e.kind == "hospital_admission"],
        "er_visits": [brief(e) for e in within if e.kind == "er_visit"],
    }
