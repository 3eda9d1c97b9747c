"""Check-in prompts: each occurrence of a check-in schedule, asked and answered.

A schedule is a FHIR R4 ``Timing`` expanded by the schedule engine (``backend.schedule``)
in the patient's zone (``local`` policy) or the zone it was set in (``home``), anchored at
``starts_at`` (so ``count: 1`` is "once, now" and a daily 10:00 made at 15:00 starts
tomorrow), and cut at ``expires_at``. Each occurrence is a prompt:

- ``upcoming`` before its due time, ``due`` until ``due + answer_within``, then ``overdue``;
- ``answered`` by a check-in response of that patient and template given in
  ``[due - 1 h, due + answer_within]``. Responses are taken oldest first and each answers one
  occurrence: the newest still-unanswered one whose window holds it (when the windows of a
  schedule do not overlap this is simply "the first response in the window"; when they do,
  a late answer counts for the prompt the patient most likely opened, the newest);
- ``cancelled``: unanswered and still open when the schedule was cancelled.

Prompts reach the patient's own login or, for a managed patient (no login), the managing
caregivers (:func:`recipients`), as ``checkin_prompt`` rows keyed
``checkin:{schedule}:{slot}:{user}`` (:func:`prompt_rows`, called by the planner). An answer
cancels the prompts it answers at once (:func:`on_answered`); the dispatcher checks again
when it sends (:func:`prompt_check`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.db import among
from backend.models import CheckinResponse, CheckinSchedule, Patient
from backend.models.checkin import TemplateKey
from backend.models.outbox import Reminder
from backend.reminders.audience import Circle, circles
from backend.schedule import Occurrence, Timing, expand
from backend.schedule.medicines import routine_of
from backend.schedule.timing import cached_timing
from notifications.outbox import cancel

KIND = "checkin_prompt"

MAX_ANSWER_WITHIN = timedelta(days=7)

# An answer given shortly before the prompt (the app open anyway) counts for it.
EARLY = timedelta(hours=1)

CANCELLED = "schedule_cancelled"

ANSWERED = "checkin_answered"


# Parsed timings by canonical JSON (parsing is pure; a handful of shapes recur).
def schedule_timing(schedule: CheckinSchedule) -> Timing:
    return cached_timing(schedule.timing)


def prompt_occurrences(
    schedule: CheckinSchedule, patient: Patient, start: datetime, end: datetime
) -> list[Occurrence]:
    """The schedule's prompts due in [start, end), before it expires (cancelled or not).

    Only those still answerable when the schedule was made: an ``event`` instant (or a
    ``starts_at``) in the past is asked if its window is still open, and is never counted
    as missed when it closed before anyone asked."""
    if schedule.expires_at is not None:
        end = min(end, schedule.expires_at)
    if end <= start:
        return []
    found = expand(
        schedule_timing(schedule),
        routine_of(patient),
        patient.time_zone,
        start,
        end,
        anchor=schedule.starts_at,
        policy=schedule.tz_policy,
        home_zone=schedule.home_time_zone,
    )
    made, within = schedule.created_at, schedule.answer_within
    return [o for o in found if o.at + within > made]


@dataclass(frozen=True)
class Prompt:
    """One occurrence of a schedule and what became of it."""

    schedule_id: int
    template: TemplateKey
    slot_key: str
    due_at: datetime
    deadline: datetime
    status: str
    response_id: int | None = None
    answered_at: datetime | None = None


Answer = tuple[datetime, int]  # (at, response id)


def responses_of(
    db: Session,
    patient_ids: Iterable[int],
    templates: Iterable[TemplateKey],
    since: datetime,
    until: datetime | None = None,
) -> dict[tuple[int, TemplateKey], list[Answer]]:
    """(patient, template) -> the responses given in [since, until], oldest first; one query
    (by code, then kept by whole key: two organizations' templates may share a code)."""
    ids, keys = sorted(set(patient_ids)), set(templates)
    if not ids or not keys:
        return {}
    stmt = select(
        CheckinResponse.patient_id,
        CheckinResponse.template_organization_id,
        CheckinResponse.template_code,
        CheckinResponse.at,
        CheckinResponse.id,
    ).where(
        CheckinResponse.patient_id.in_(ids),
        CheckinResponse.template_code.in_(sorted({k.code for k in keys})),
        CheckinResponse.at >= since,
    )
    if until is not None:
        stmt = stmt.where(CheckinResponse.at <= until)
    found: dict[tuple[int, TemplateKey], list[Answer]] = defaultdict(list)
    for patient_id, org, code, at, response_id in db.execute(
        stmt.order_by(CheckinResponse.at, CheckinResponse.id)
    ):
        key = TemplateKey(org, code)
        if key in keys:
            found[(patient_id, key)].append((at, response_id))
    return found


def prompts(
    schedule: CheckinSchedule,
    occs: Sequence[Occurrence],
    answers: Sequence[Answer],
    at: datetime,
) -> list[Prompt]:
    """The status of each occurrence at ``at`` (see the module docstring for the rules)."""
    within = schedule.answer_within
    ordered = sorted(occs, key=lambda o: o.at)
    answered: dict[int, Answer] = {}
    for answer in sorted(answers):
        open_ = [
            i
            for i, o in enumerate(ordered)
            if i not in answered and o.at - EARLY <= answer[0] <= o.at + within
        ]
        if open_:
            answered[max(open_, key=lambda i: ordered[i].at)] = answer
    out = []
    for i, o in enumerate(ordered):
        deadline = o.at + within
        found = answered.get(i)
        if found is not None:
            status = "answered"
        elif schedule.cancelled_at is not None and deadline > schedule.cancelled_at:
            status = "cancelled"
        elif at < o.at:
            status = "upcoming"
        elif at <= deadline:
            status = "due"
        else:
            status = "overdue"
        out.append(
            Prompt(
                schedule_id=schedule.id,
                template=schedule.template_key,
                slot_key=o.slot_key,
                due_at=o.at,
                deadline=deadline,
                status=status,
                response_id=found[1] if found else None,
                answered_at=found[0] if found else None,
            )
        )
    return out


def window_prompts(
    db: Session,
    schedule: CheckinSchedule,
    patient: Patient,
    start: datetime,
    end: datetime,
    at: datetime,
) -> list[Prompt]:
    """The prompts due in [start, end) with their status at ``at`` (two windows' worth of
    margin before ``start``, so an answer is matched as it would be over the whole history)."""
    within = schedule.answer_within
    occs = prompt_occurrences(schedule, patient, start - within - EARLY, end)
    answers = responses_of(
        db, [patient.id], [schedule.template_key], start - 2 * within - EARLY, end + within
    ).get((patient.id, schedule.template_key), [])
    return [p for p in prompts(schedule, occs, answers, at) if start <= p.due_at < end]


def answered_by(
    db: Session, patient: Patient, template: TemplateKey, response_id: int, at: datetime
) -> list[Prompt]:
    """The occurrences the response ``response_id`` (given at ``at``) answers: at most one per
    schedule of the patient and template, by :func:`prompts`' rule over the window's answers.
    Only schedules not cancelled whose prompts can still be open (one query, then two per
    schedule: its occurrences and answers)."""
    stmt = select(CheckinSchedule).where(
        CheckinSchedule.patient_id == patient.id,
        CheckinSchedule.of_template(template),
        CheckinSchedule.status != "cancelled",
        or_(
            CheckinSchedule.expires_at.is_(None),
            CheckinSchedule.expires_at > at - MAX_ANSWER_WITHIN,
        ),
    )
    found: list[Prompt] = []
    for schedule in db.scalars(stmt.order_by(CheckinSchedule.id)):
        # The occurrences whose window [due - 1 h, due + answer_within] holds ``at``.
        start, end = at - schedule.answer_within, at + EARLY + timedelta(seconds=1)
        found += [
            p
            for p in window_prompts(db, schedule, patient, start, end, at)
            if p.response_id == response_id
        ]
    return found


def on_answered(
    db: Session, patient: Patient, template: TemplateKey, response_id: int, at: datetime
) -> int:
    """A check-in was answered: the pending prompts of the occurrences it answers
    (:func:`answered_by`) are cancelled at once, in the answer's transaction (reason
    ``checkin_answered``, as the dispatcher's re-check says it), so a prompt due in five
    minutes for a check-in answered early is not left pending. An answer outside every
    window cancels nothing. Returns how many rows were cancelled."""
    return sum(
        cancel(
            db,
            reason=ANSWERED,
            patient_id=patient.id,
            kinds=(KIND,),
            subject={"schedule_id": p.schedule_id, "slot_key": p.slot_key},
        )
        for p in answered_by(db, patient, template, response_id, at)
    )


def prompt_key(schedule_id: int, slot_key: str, user_id: int) -> str:
    return f"checkin:{schedule_id}:{slot_key}:{user_id}"


def recipients(circle: Circle) -> list[int]:
    """The patient's own login, or for a managed patient the managing caregivers."""
    return circle.acting()


def prompt_rows(
    db: Session,
    patients: Mapping[int, Patient],
    circle: Mapping[int, Circle],
    start: datetime,
    end: datetime,
    at: datetime,
    schedule_ids: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """The ``checkin_prompt`` outbox rows of these patients' active schedules due in
    [start, end) and still answerable at ``at``; two queries (schedules, answers) for the
    whole batch. A prompt due before ``at`` (a re-plan's look-back) is due at ``at``."""
    stmt = select(CheckinSchedule).where(
        among(db, CheckinSchedule.patient_id, list(patients)),
        CheckinSchedule.status == "active",
        or_(CheckinSchedule.expires_at.is_(None), CheckinSchedule.expires_at > start),
    )
    if schedule_ids is not None:
        stmt = stmt.where(CheckinSchedule.id.in_(list(schedule_ids)))
    schedules = list(db.scalars(stmt.order_by(CheckinSchedule.id)))
    if not schedules:
        return []
    answers = responses_of(
        db,
        {s.patient_id for s in schedules},
        {s.template_key for s in schedules},
        start - EARLY,
    )
    rows: list[dict[str, Any]] = []
    for schedule in schedules:
        users = recipients(circle[schedule.patient_id])
        if not users:
            continue
        within = schedule.answer_within
        given = [a for a, _ in answers.get((schedule.patient_id, schedule.template_key), [])]
        for occ in prompt_occurrences(schedule, patients[schedule.patient_id], start, end):
            deadline = occ.at + within
            if deadline <= at or any(occ.at - EARLY <= a <= deadline for a in given):
                continue
            due = max(occ.at, at)
            # Ids only: the subject travels in the push's data (no template code on a phone).
            subject = {
                "schedule_id": schedule.id,
                "slot_key": occ.slot_key,
                "due_at": occ.at.isoformat(),
            }
            for user_id in users:
                rows.append(
                    {
                        "dedupe_key": prompt_key(schedule.id, occ.slot_key, user_id),
                        "kind": KIND,
                        "user_id": user_id,
                        "patient_id": schedule.patient_id,
                        "subject": subject,
                        "due_at": due,
                        "not_after": deadline,
                        "next_attempt_at": due,
                    }
                )
    return rows


def prompt_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """Skip a prompt whose schedule was cancelled or expired, that was answered already, or
    whose recipient is no longer the patient or a managing caregiver; a few queries."""
    ids = {int(r.subject["schedule_id"]) for r in reminders if "schedule_id" in (r.subject or {})}
    schedules = {
        s.id: s for s in db.scalars(select(CheckinSchedule).where(CheckinSchedule.id.in_(ids)))
    }
    due = {r.id: datetime.fromisoformat(str((r.subject or {}).get("due_at"))) for r in reminders}
    answers = responses_of(
        db,
        {s.patient_id for s in schedules.values()},
        {s.template_key for s in schedules.values()},
        min(due.values(), default=now()) - EARLY,
    )
    patient_ids = {s.patient_id for s in schedules.values()}
    patients = list(db.scalars(select(Patient).where(Patient.id.in_(patient_ids))))
    circle = circles(db, patients, now())
    at = now()
    reasons: dict[int, str] = {}
    for r in reminders:
        schedule = schedules.get(int((r.subject or {}).get("schedule_id", 0)))
        if schedule is None or schedule.status == "cancelled":
            reasons[r.id] = CANCELLED
            continue
        if schedule.expires_at is not None and schedule.expires_at <= due[r.id]:
            reasons[r.id] = "schedule_expired"
            continue
        given = answers.get((schedule.patient_id, schedule.template_key), [])
        if any(a >= due[r.id] - EARLY for a, _ in given):
            reasons[r.id] = ANSWERED
        elif r.user_id not in recipients(circle.get(schedule.patient_id, Circle())):
            reasons[r.id] = "access_revoked"
        elif schedule.expires_at is not None and schedule.expires_at <= at:
            reasons[r.id] = "schedule_expired"
    return reasons
