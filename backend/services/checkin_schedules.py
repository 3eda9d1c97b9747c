"""Check-in schedules: when a patient is asked to answer a template, and what became of it.

A schedule is a FHIR R4 ``Timing`` expanded by the medication engine (``backend.schedule``)
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
caregivers, through the reminder pipeline (``checkin_prompt`` rows planned by
``notifications.planner``; :func:`prompt_rows` builds them). The computed worklist rule
``checkin_overdue`` is registered with ``backend.services.worklist`` when this module is
imported (the planner imports it, and so does the API).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.models import CheckinResponse, CheckinSchedule, Patient
from backend.models.medication import TZ_POLICIES
from backend.models.worklist import UNRESOLVED, WorkItem
from backend.schedule import Occurrence, Timing, TimingError, expand, parse_timing
from backend.services.medications import routine_of
from backend.services.worklist import raise_flag, register_rule, resolve_by_system
from notifications.escalation import Circle
from notifications.outbox import Reminder, cancel

KIND = "checkin_prompt"
DEFAULT_ANSWER_WITHIN = timedelta(hours=24)
MIN_ANSWER_WITHIN = timedelta(minutes=15)
MAX_ANSWER_WITHIN = timedelta(days=7)
# An answer given shortly before the prompt (the app open anyway) counts for it.
EARLY = timedelta(hours=1)
# How far back the overdue rule looks for unanswered prompts.
OVERDUE_LOOKBACK = timedelta(days=14)
OVERDUE = "checkin_overdue"
CANCELLED = "schedule_cancelled"
ANSWERED = "checkin_answered"

STATUSES = ("upcoming", "due", "answered", "overdue", "cancelled")


class ScheduleError(ValueError):
    """A schedule we refuse: ``field`` names the input (``timing.repeat.periodUnit``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- templates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFacts:
    code: str
    caregiver_may_answer: bool
    hidden_from_caregivers: bool


def template_for(db: Session, patient_id: int, code: str) -> TemplateFacts | None:
    """The template if the patient may be asked it (a built-in, or one of the organizations
    they are enrolled with), read at call time from ``backend.checkins``: the set grows."""
    from backend.checkins.service import template_for_patient

    found = template_for_patient(db, patient_id, code)
    if found is None:
        return None
    return TemplateFacts(found.code, found.caregiver_may_answer, found.hidden_from_caregivers)


def template_exists(db: Session, code: str) -> bool:
    """A built-in template or a custom one of any organization (``template_for`` tells
    whether a given patient may be asked it)."""
    from backend.checkins.service import any_template

    return any_template(db, code) is not None


def hidden_from_caregivers(db: Session) -> set[str]:
    """The codes of templates whose answers caregivers never see (SOCIAL-NEEDS): their
    schedules are not shown to caregivers either."""
    from backend.checkins.service import hidden_from_caregivers as hidden

    return hidden(db)


# -- durations ------------------------------------------------------------------------------

_DURATION = re.compile(r"P(?:(\d{1,4})W)?(?:(\d{1,4})D)?(?:T(?:(\d{1,5})H)?(?:(\d{1,6})M)?)?")


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration in weeks, days, hours and minutes (``PT24H``, ``P2D``, ``PT90M``)."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()) or text.endswith("T"):
        raise ValueError("An ISO 8601 duration such as PT24H, P2D or PT90M.")
    weeks, days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


def format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")


# -- expansion ------------------------------------------------------------------------------

# Parsed timings by canonical JSON (parsing is pure; a handful of shapes recur).
_PARSED: dict[str, Timing] = {}


def timing_of(schedule: CheckinSchedule) -> Timing:
    key = json.dumps(schedule.timing, sort_keys=True, separators=(",", ":"))
    found = _PARSED.get(key)
    if found is None:
        found = parse_timing(schedule.timing)
        if len(_PARSED) >= 1024:
            _PARSED.clear()
        _PARSED[key] = found
    return found


def occurrences(
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
        timing_of(schedule),
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
    template: str
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
    templates: Iterable[str],
    since: datetime,
    until: datetime | None = None,
) -> dict[tuple[int, str], list[Answer]]:
    """(patient, template) -> the responses given in [since, until], oldest first; one query."""
    ids, codes = sorted(set(patient_ids)), sorted(set(templates))
    if not ids or not codes:
        return {}
    stmt = select(
        CheckinResponse.patient_id,
        CheckinResponse.template_code,
        CheckinResponse.at,
        CheckinResponse.id,
    ).where(
        CheckinResponse.patient_id.in_(ids),
        CheckinResponse.template_code.in_(codes),
        CheckinResponse.at >= since,
    )
    if until is not None:
        stmt = stmt.where(CheckinResponse.at <= until)
    found: dict[tuple[int, str], list[Answer]] = defaultdict(list)
    for patient_id, code, at, response_id in db.execute(
        stmt.order_by(CheckinResponse.at, CheckinResponse.id)
    ):
        found[(patient_id, code)].append((at, response_id))
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
                template=schedule.template_code,
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
    occs = occurrences(schedule, patient, start - within - EARLY, end)
    answers = responses_of(
        db, [patient.id], [schedule.template_code], start - 2 * within - EARLY, end + within
    ).get((patient.id, schedule.template_code), [])
    return [p for p in prompts(schedule, occs, answers, at) if start <= p.due_at < end]


def answered_by(
    db: Session, patient: Patient, template_code: str, response_id: int, at: datetime
) -> list[Prompt]:
    """The occurrences the response ``response_id`` (given at ``at``) answers: at most one per
    schedule of the patient and template, by :func:`prompts`' rule over the window's answers.
    Only schedules not cancelled whose prompts can still be open (one query, then two per
    schedule: its occurrences and answers)."""
    stmt = select(CheckinSchedule).where(
        CheckinSchedule.patient_id == patient.id,
        CheckinSchedule.template_code == template_code,
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
    db: Session, patient: Patient, template_code: str, response_id: int, at: datetime
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
        for p in answered_by(db, patient, template_code, response_id, at)
    )


# -- create and cancel ----------------------------------------------------------------------


def check_schedule(
    db: Session,
    *,
    patient: Patient,
    template_code: str,
    timing: Mapping[str, Any],
    answer_within: timedelta,
    expires_at: datetime | None,
    starts_at: datetime,
    tz_policy: str,
) -> None:
    """Raise :class:`ScheduleError` naming the first input we refuse."""
    template = template_for(db, patient.id, template_code)
    if template is None:
        raise ScheduleError("template", f"No such check-in template {template_code!r}.")
    if patient.user_id is None and not template.caregiver_may_answer:
        # The prompts would go to a caregiver who may not answer: the care team asks by phone.
        raise ScheduleError(
            "template",
            f"{template_code} is answered by the patient, who has no login of their own, and "
            "not by a caregiver; record the answers given by phone instead.",
        )
    try:
        parse_timing(dict(timing))
    except TimingError as exc:
        path = f"timing.{exc.field}" if exc.field else "timing"
        raise ScheduleError(path, exc.message) from None
    if not MIN_ANSWER_WITHIN <= answer_within <= MAX_ANSWER_WITHIN:
        raise ScheduleError("answer_within", "Between 15 minutes (PT15M) and 7 days (P7D).")
    if expires_at is not None and expires_at <= max(starts_at, now()):
        raise ScheduleError("expires_at", "Must be in the future and after the start.")
    if tz_policy not in TZ_POLICIES:
        raise ScheduleError("tz_policy", f"One of {', '.join(TZ_POLICIES)}.")


def schedule_checkin(
    db: Session,
    *,
    patient_id: int,
    template_code: str,
    timing: dict[str, Any],
    answer_within: timedelta = DEFAULT_ANSWER_WITHIN,
    expires_at: datetime | None,
    created_by_user_id: int,
    note: str = "",
    starts_at: datetime | None = None,
    tz_policy: str = "local",
) -> CheckinSchedule:
    """Schedule a check-in and plan its prompts, in the caller's transaction.

    ``timing`` is FHIR R4 Timing JSON: ``{"event": ["2026-12-02T10:00:00-05:00"]}`` for one
    instant, ``{"repeat": {"count": 1}}`` for once at ``starts_at`` (default now),
    ``{"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:00"]}}``
    daily. Raises :class:`ScheduleError` (field, message) for what it refuses.
    """
    at = now()
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise ScheduleError("patient_id", "No such patient.")
    starts = starts_at or at
    check_schedule(
        db,
        patient=patient,
        template_code=template_code,
        timing=timing,
        answer_within=answer_within,
        expires_at=expires_at,
        starts_at=starts,
        tz_policy=tz_policy,
    )
    schedule = CheckinSchedule(
        patient_id=patient_id,
        template_code=template_code,
        timing=timing,
        tz_policy=tz_policy,
        home_time_zone=patient.time_zone,
        starts_at=starts,
        answer_within_minutes=int(answer_within.total_seconds() // 60),
        expires_at=expires_at,
        status="active",
        note=note,
        created_by_user_id=created_by_user_id,
        created_at=at,
    )
    db.add(schedule)
    db.flush()
    from notifications.planner import replan_for_checkin_schedule

    # Everything still answerable is asked, an event in the past included.
    replan_for_checkin_schedule(db, schedule.id, at, lookback=answer_within)
    return schedule


def cancel_schedule(db: Session, schedule: CheckinSchedule, user_id: int) -> int:
    """Cancel the schedule and its pending prompts; close its overdue flag. Returns how many
    prompts were cancelled. Cancelling twice changes nothing."""
    if schedule.status == "cancelled":
        return 0
    at = now()
    schedule.status = "cancelled"
    schedule.cancelled_at, schedule.cancelled_by_user_id = at, user_id
    db.flush()
    resolve_by_system(
        db, schedule.patient_id, overdue_key(schedule.id), "The check-in schedule was cancelled."
    )
    return cancel(
        db,
        reason=CANCELLED,
        patient_id=schedule.patient_id,
        kinds=(KIND,),
        subject={"schedule_id": schedule.id},
    )


# -- planning (called by notifications.planner) ----------------------------------------------


def prompt_key(schedule_id: int, slot_key: str, user_id: int) -> str:
    return f"checkin:{schedule_id}:{slot_key}:{user_id}"


def recipients(circle: Circle) -> list[int]:
    """The patient's own login, or for a managed patient the managing caregivers."""
    if circle.patient_user is not None:
        return [circle.patient_user]
    return sorted(circle.managing)


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
        CheckinSchedule.patient_id.in_(list(patients)),
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
        {s.template_code for s in schedules},
        start - EARLY,
    )
    rows: list[dict[str, Any]] = []
    for schedule in schedules:
        users = recipients(circle[schedule.patient_id])
        if not users:
            continue
        within = schedule.answer_within
        given = [a for a, _ in answers.get((schedule.patient_id, schedule.template_code), [])]
        for occ in occurrences(schedule, patients[schedule.patient_id], start, end):
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


# -- relevance (installed by notifications.relevance) -----------------------------------------


def prompt_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """Skip a prompt whose schedule was cancelled or expired, that was answered already, or
    whose recipient is no longer the patient or a managing caregiver; a few queries."""
    from notifications.escalation import circles

    ids = {int(r.subject["schedule_id"]) for r in reminders if "schedule_id" in (r.subject or {})}
    schedules = {
        s.id: s for s in db.scalars(select(CheckinSchedule).where(CheckinSchedule.id.in_(ids)))
    }
    due = {r.id: datetime.fromisoformat(str((r.subject or {}).get("due_at"))) for r in reminders}
    answers = responses_of(
        db,
        {s.patient_id for s in schedules.values()},
        {s.template_code for s in schedules.values()},
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
        given = answers.get((schedule.patient_id, schedule.template_code), [])
        if any(a >= due[r.id] - EARLY for a, _ in given):
            reasons[r.id] = ANSWERED
        elif r.user_id not in recipients(circle.get(schedule.patient_id, Circle())):
            reasons[r.id] = "access_revoked"
        elif schedule.expires_at is not None and schedule.expires_at <= at:
            reasons[r.id] = "schedule_expired"
    return reasons


# -- the computed worklist rule ---------------------------------------------------------------


def overdue_key(schedule_id: int) -> str:
    return f"{OVERDUE}:{schedule_id}"


def _day_label(at: datetime, zone: str) -> str:
    local = at.astimezone(ZoneInfo(zone))
    return f"{local.day} {local:%b}"


def overdue_rule(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    """``checkin_overdue``: an active schedule with a prompt whose answer window closed
    without an answer in the last 14 days (and no newer prompt answered since) opens or
    refreshes one item per schedule; the newest prompt answered resolves it. Three queries
    for the batch (schedules with their patients, answers, open items) plus the writes."""
    if not patient_ids:
        return
    since = at - OVERDUE_LOOKBACK
    rows = db.execute(
        select(CheckinSchedule, Patient)
        .join(Patient, Patient.id == CheckinSchedule.patient_id)
        .where(
            CheckinSchedule.patient_id.in_(list(patient_ids)),
            CheckinSchedule.status == "active",
            CheckinSchedule.starts_at <= at,
            or_(CheckinSchedule.expires_at.is_(None), CheckinSchedule.expires_at > since),
        )
        .order_by(CheckinSchedule.id)
    ).all()
    if not rows:
        return
    longest = max(s.answer_within for s, _ in rows)
    answers = responses_of(
        db,
        {s.patient_id for s, _ in rows},
        {s.template_code for s, _ in rows},
        since - 2 * longest - EARLY,
        at,
    )
    open_items = set(
        db.execute(
            select(WorkItem.patient_id, WorkItem.key).where(
                WorkItem.patient_id.in_({s.patient_id for s, _ in rows}),
                WorkItem.kind == OVERDUE,
                WorkItem.status.in_(UNRESOLVED),
            )
        ).all()
    )
    for schedule, patient in rows:
        within = schedule.answer_within
        occs = occurrences(schedule, patient, since - 2 * within - EARLY, at + timedelta(seconds=1))
        given = answers.get((schedule.patient_id, schedule.template_code), [])
        done = prompts(schedule, occs, given, at)
        answered = [p for p in done if p.status == "answered"]
        last_answered = answered[-1].due_at if answered else None
        missed = [
            p
            for p in done
            if p.status == "overdue"
            and p.deadline >= since
            and (last_answered is None or p.due_at > last_answered)
        ]
        key = overdue_key(schedule.id)
        if missed:
            latest = missed[-1]
            raise_flag(
                db,
                patient_id=schedule.patient_id,
                kind=OVERDUE,
                key=key,
                title=(
                    f"{schedule.template_code} check-in not answered "
                    f"(due {_day_label(latest.due_at, patient.time_zone)})"
                ),
                detail={
                    "schedule_id": schedule.id,
                    "template": schedule.template_code,
                    "due_at": latest.due_at.isoformat(),
                    "occurrences_missed": len(missed),
                },
                evidence_at=latest.deadline,
                at=at,
            )
        elif answered and (schedule.patient_id, key) in open_items:
            resolve_by_system(db, schedule.patient_id, key, "The newest check-in was answered.")


register_rule(OVERDUE, overdue_rule)
