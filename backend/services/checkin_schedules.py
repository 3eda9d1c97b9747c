"""Check-in schedules: creating and cancelling them, their templates and durations, and the
computed worklist rule ``checkin_overdue``.

What a schedule's occurrences are, what became of each (upcoming, due, answered, overdue,
cancelled) and how they reach the patient is in ``backend.reminders.checkin_prompts``; the
sweep (``backend.services.sweep``) runs :func:`overdue_rule`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import ServiceError
from backend.models import CheckinSchedule, Patient
from backend.models.checkin import TemplateKey
from backend.models.medication import TZ_POLICIES
from backend.models.worklist import UNRESOLVED, WorkItem
from backend.reminders.checkin_prompts import (
    CANCELLED,
    EARLY,
    KIND,
    MAX_ANSWER_WITHIN,
    prompt_occurrences,
    prompts,
    responses_of,
)
from backend.reminders.planner import replan_for_checkin_schedule
from backend.schedule import TimingError, parse_timing
from backend.services import checkins
from backend.services.worklist import raise_work_item, resolve_by_system
from notifications.outbox import cancel

DEFAULT_ANSWER_WITHIN = timedelta(hours=24)
MIN_ANSWER_WITHIN = timedelta(minutes=15)
# How far back the overdue rule looks for unanswered prompts.
OVERDUE_LOOKBACK = timedelta(days=14)
OVERDUE = "checkin_overdue"

STATUSES = ("upcoming", "due", "answered", "overdue", "cancelled")


# -- templates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFacts:
    key: TemplateKey
    caregiver_may_answer: bool
    hidden_from_caregivers: bool


def template_for(
    db: Session, patient_id: int, code: str, organization_id: int | None = None
) -> TemplateFacts | None:
    """The template if the patient may be asked it (a built-in, or one of the organizations
    they are enrolled with), read at call time from ``backend.checkins``: the set grows."""
    found = checkins.template_for_patient(db, patient_id, code, organization_id)
    if found is None:
        return None
    return TemplateFacts(found.key, found.caregiver_may_answer, found.hidden_from_caregivers)


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


# -- create and cancel ----------------------------------------------------------------------


def check_schedule(
    db: Session,
    *,
    patient: Patient,
    template_code: str,
    template_organization_id: int | None,
    timing: Mapping[str, Any],
    answer_within: timedelta,
    expires_at: datetime | None,
    starts_at: datetime,
    tz_policy: str,
) -> TemplateKey:
    """The template asked; raise :class:`ServiceError` naming the first input we refuse."""
    template = template_for(db, patient.id, template_code, template_organization_id)
    if template is None:
        raise _refused("template", f"No such check-in template {template_code!r}.")
    if patient.user_id is None and not template.caregiver_may_answer:
        # The prompts would go to a caregiver who may not answer: the care team asks by phone.
        raise _refused(
            "template",
            f"{template_code} is answered by the patient, who has no login of their own, and "
            "not by a caregiver; record the answers given by phone instead.",
        )
    try:
        parse_timing(dict(timing))
    except TimingError as exc:
        path = f"timing.{exc.field}" if exc.field else "timing"
        raise _refused(path, exc.message) from None
    if not MIN_ANSWER_WITHIN <= answer_within <= MAX_ANSWER_WITHIN:
        raise _refused("answer_within", "Between 15 minutes (PT15M) and 7 days (P7D).")
    if expires_at is not None and expires_at <= max(starts_at, now()):
        raise _refused("expires_at", "Must be in the future and after the start.")
    if tz_policy not in TZ_POLICIES:
        raise _refused("tz_policy", f"One of {', '.join(TZ_POLICIES)}.")
    return template.key


def schedule_checkin(
    db: Session,
    *,
    patient_id: int,
    template_code: str,
    template_organization_id: int | None = None,
    timing: dict[str, Any],
    answer_within: timedelta = DEFAULT_ANSWER_WITHIN,
    expires_at: datetime | None,
    created_by_user_id: int,
    note: str = "",
    starts_at: datetime | None = None,
    tz_policy: str = "local",
) -> CheckinSchedule:
    """Schedule a check-in and plan its prompts, in the caller's transaction.

    The template is a built-in by its code, or an organization's (``template_organization_id``
    says whose where two of the patient's organizations have the code). ``timing`` is FHIR R4
    Timing JSON: ``{"event": ["2026-12-02T10:00:00-05:00"]}`` for one
    instant, ``{"repeat": {"count": 1}}`` for once at ``starts_at`` (default now),
    ``{"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:00"]}}``
    daily. Raises :class:`ServiceError` (422 naming the field) for what it refuses.
    """
    at = now()
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise _refused("patient_id", "No such patient.")
    starts = starts_at or at
    template = check_schedule(
        db,
        patient=patient,
        template_code=template_code,
        template_organization_id=template_organization_id,
        timing=timing,
        answer_within=answer_within,
        expires_at=expires_at,
        starts_at=starts,
        tz_policy=tz_policy,
    )
    schedule = CheckinSchedule(
        patient_id=patient_id,
        template_code=template.code,
        template_organization_id=template.organization_id,
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
        {s.template_key for s, _ in rows},
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
        occs = prompt_occurrences(
            schedule, patient, since - 2 * within - EARLY, at + timedelta(seconds=1)
        )
        given = answers.get((schedule.patient_id, schedule.template_key), [])
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
            raise_work_item(
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
                    "template_organization_id": schedule.template_organization_id,
                    "due_at": latest.due_at.isoformat(),
                    "occurrences_missed": len(missed),
                },
                evidence_at=latest.deadline,
                at=at,
            )
        elif answered and (schedule.patient_id, key) in open_items:
            resolve_by_system(db, schedule.patient_id, key, "The newest check-in was answered.")


def _refused(field: str, message: str) -> ServiceError:
    """A schedule we refuse: ``field`` names the input (``timing.repeat.periodUnit``)."""
    return ServiceError(422, message, field=field)
