"""The "today" view: for the signed-in person and each patient they care for, in the
patient's own zone, what is due, what was done, and what is coming.

It is the hottest read (every phone opens it many times a day), so each patient's day is
computed once and served from ``today_cache`` until something changes it
(``backend/models/today_cache``). A request whose days are all cached costs one query: the
reader, their phones, who is cared for, with their cached days. The days it misses are
computed together in a fixed number of queries whatever the number of patients or medicines
(no N+1): the patients whole (1; the read took only what a hit uses), medicines (1), dose
logs (1), appointments (1), care plans (1), check-in schedules (1) and, when there are any,
their answers (1) and the templates kept from caregivers (1); then stored (1). A missed day
is computed whole, whoever asks; what the reader may see is chosen when it is served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from backend.access import Action, PatientAccess, accesses_of, record_access
from backend.models import (
    Appointment,
    CarePlan,
    CheckinSchedule,
    DoseLog,
    Medication,
    Patient,
    User,
)
from backend.reminders import checkin_prompts
from backend.reminders.timeline import (
    DUE_BEFORE,
    LATE_AFTER,
    LATE_AFTER_CRITICAL,
    MATCH_LATE,
    MISSED_AFTER,
)
from backend.schedule.medicines import local_day, occurrences, prn_status
from backend.services import checkins, today_cache
from backend.services.today_cache import Lookup, Sections, Wanted


def dose_status(at: datetime, log: DoseLog | None, med: Medication, now_: datetime) -> str:
    if log is not None:
        if log.status == "skipped":
            return "skipped"
        return "late" if log.late else "taken"
    late_after = LATE_AFTER_CRITICAL if med.time_critical else LATE_AFTER
    if now_ < at - DUE_BEFORE:
        return "upcoming"
    if now_ <= at + late_after:
        return "due"
    if now_ <= at + MISSED_AFTER:
        return "overdue"
    return "missed"


@dataclass
class PatientDay:
    """One patient's local day, computed whole (every section, whoever asked)."""

    patient: Patient
    day: date
    start: datetime
    end: datetime
    doses: list[dict[str, Any]] = field(default_factory=list)
    prn: list[dict[str, Any]] = field(default_factory=list)
    extra_doses: list[dict[str, Any]] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    checkins: list[dict[str, Any]] = field(default_factory=list)
    checkins_for_caregivers: list[dict[str, Any]] = field(default_factory=list)
    # Instants at which a status shown changes by itself (a dose becomes due, overdue or
    # missed; an as-needed dose leaves the 24-hour window; a check-in opens or closes).
    changes_at: list[datetime] = field(default_factory=list)

    def next_change(self, at: datetime) -> datetime:
        return min((t for t in self.changes_at if t > at), default=self.end + MISSED_AFTER)


@dataclass
class DayView:
    """What one reader is shown of one patient's day: each section rendered as JSON, or None
    where the reader may not see it."""

    access: PatientAccess
    day: date
    sections: dict[str, str | None]


# Which permission each section needs (check-ins: caregivers get their own rendering).
_NEEDS = {
    "doses": Action.VIEW_MEDICATIONS,
    "extra_doses": Action.VIEW_MEDICATIONS,
    "prn": Action.VIEW_MEDICATIONS,
    "appointments": Action.VIEW_APPOINTMENTS,
    "activities": Action.VIEW_CARE_PLAN,
    "checkins": Action.VIEW_CHECKINS,
}


def read_today(
    db: Session, user: tuple[int, str, int | None], requested: date | None, at: datetime
) -> Lookup:
    """The one read of a today view (``today_cache.read``): the user of the sign-in ``user``
    (id, uid, auth time), whom they care for and the cached days that may be "today" for
    them at ``at`` (or the ``requested`` one)."""
    return today_cache.read(db, user, [requested] if requested else _todays(at), at)


def today_views(
    db: Session,
    user: User,
    lookup: Lookup,
    requested: date | None,
    render: Callable[[PatientDay], Sections],
    at: datetime,
) -> list[DayView]:
    """The day of the user and of each person they care for, as the user may see it, from
    ``lookup`` (:func:`read_today` at ``at``); the days it has no good row for are computed
    and stored. ``render`` turns a computed day into the JSON of each section."""
    accesses = accesses_of(user, lookup.cared_for)
    wanted = [Wanted(a.patient, requested or local_today(a.patient, at)) for a in accesses]
    for access in accesses:  # one read of each person's day, in their log (not the patient's own)
        record_access(access, "view_today")
    found = lookup.good(wanted, at)
    missing = [w for w in wanted if w.patient.id not in found]
    if missing:
        computed = build_days(db, missing, at)
        rendered = [
            (w, lookup.versions[w.patient.id], d.next_change(at), render(d))
            for w, d in zip(missing, computed, strict=True)
        ]
        today_cache.store(db, rendered, at)
        found.update((w.patient.id, sections) for w, _, _, sections in rendered)
    return [
        DayView(access, w.day, _visible(access, found[w.patient.id]))
        for access, w in zip(accesses, wanted, strict=True)
    ]


def local_today(patient: Patient, at: datetime) -> date:
    return at.astimezone(ZoneInfo(patient.time_zone)).date()


def _todays(at: datetime) -> list[date]:
    """Every date that is "today" somewhere at ``at`` (UTC-12 to UTC+14)."""
    return sorted({(at + timedelta(hours=h)).date() for h in (-12, 14)} | {at.date()})


def _visible(access: PatientAccess, sections: Sections) -> dict[str, str | None]:
    shown: dict[str, str | None] = {
        name: sections[name] if access.allows(action) else None for name, action in _NEEDS.items()
    }
    if access.is_caregiver and shown["checkins"] is not None:
        # Answers a caregiver never sees (SOCIAL-NEEDS): nor are their prompts shown.
        shown["checkins"] = sections["checkins_for_caregivers"]
    return shown


def build_days(db: Session, wanted: list[Wanted], at: datetime) -> list[PatientDay]:
    """Each wanted day computed whole, as it stands at ``at``, in a fixed number of queries."""
    _load_whole(db, [w.patient for w in wanted])
    days = []
    for w in wanted:
        start, end = local_day(w.day, w.patient.time_zone)
        days.append(PatientDay(w.patient, w.day, start, end))
    _fill_doses(db, days, at)
    _fill_appointments(db, days)
    _fill_activities(db, days)
    _fill_checkins(db, days, at)
    return days


def _load_whole(db: Session, patients: list[Patient]) -> None:
    """Fill in what the today read left unread of these patients (their routine, quiet
    hours...: ``today_cache._ONLY``) in one query, rather than one lazy load each."""
    db.execute(select(Patient).where(Patient.id.in_([p.id for p in patients]))).all()


def _fill_appointments(db: Session, days: list[PatientDay]) -> None:
    by_patient = {d.patient.id: d for d in days}
    rows = db.scalars(
        select(Appointment)
        .where(
            Appointment.patient_id.in_(by_patient),
            Appointment.start_at < max(d.end for d in days),
            Appointment.end_at > min(d.start for d in days),
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    for appt in rows:
        d = by_patient[appt.patient_id]
        if appt.start_at < d.end and appt.end_at > d.start:
            d.appointments.append(appt)


def _fill_activities(db: Session, days: list[PatientDay]) -> None:
    by_patient = {d.patient.id: d for d in days}
    plans = db.scalars(
        select(CarePlan).where(CarePlan.patient_id.in_(by_patient), CarePlan.status == "active")
    )
    for plan in plans:
        d = by_patient[plan.patient_id]
        d.activities.extend(
            {**a, "plan_id": plan.id} for a in plan.activities if a.get("status") == "open"
        )


def _fill_checkins(db: Session, days: list[PatientDay], at: datetime) -> None:
    """The check-in prompts due each day, with their status (backend.services.checkin_schedules);
    and the same without the templates kept from caregivers, for a caregiver to see."""
    by_patient = {d.patient.id: d for d in days}
    earliest, latest = min(d.start for d in days), max(d.end for d in days)
    schedules = list(
        db.scalars(
            select(CheckinSchedule)
            .where(
                CheckinSchedule.patient_id.in_(list(by_patient)),
                CheckinSchedule.status == "active",
                CheckinSchedule.starts_at < latest,
                or_(CheckinSchedule.expires_at.is_(None), CheckinSchedule.expires_at > earliest),
            )
            .order_by(CheckinSchedule.id)
        )
    )
    if not schedules:
        return
    hidden = checkins.hidden_from_caregivers(db, {s.template_key for s in schedules})
    longest = max(s.answer_within for s in schedules)
    answers = checkin_prompts.responses_of(
        db,
        {s.patient_id for s in schedules},
        {s.template_key for s in schedules},
        earliest - 2 * longest - checkin_prompts.EARLY,
        latest + longest,
    )
    for schedule in schedules:
        d = by_patient[schedule.patient_id]
        # Earlier prompts may take today's answers.
        margin = schedule.answer_within + checkin_prompts.EARLY
        occs = checkin_prompts.prompt_occurrences(schedule, d.patient, d.start - margin, d.end)
        given = answers.get((schedule.patient_id, schedule.template_key), [])
        for p in checkin_prompts.prompts(schedule, occs, given, at):
            d.changes_at += (p.due_at, p.deadline)
            if d.start <= p.due_at < d.end:
                prompt = {
                    "schedule_id": schedule.id,
                    "template": schedule.template_code,
                    "template_organization_id": schedule.template_organization_id,
                    "due_at": p.due_at,
                    "answer_by": p.deadline,
                    "status": p.status,
                    "response_id": p.response_id,
                }
                d.checkins.append(prompt)
                if schedule.template_key not in hidden:
                    d.checkins_for_caregivers.append(prompt)
    for d in days:
        d.checkins.sort(key=lambda c: (c["due_at"], c["schedule_id"]))
        d.checkins_for_caregivers.sort(key=lambda c: (c["due_at"], c["schedule_id"]))


def _fill_doses(db: Session, days: list[PatientDay], at: datetime) -> None:
    by_patient = {d.patient.id: d for d in days}
    meds = list(
        db.scalars(
            select(Medication)
            .where(Medication.patient_id.in_(by_patient), Medication.status == "active")
            .order_by(Medication.name, Medication.id)
        )
    )
    logs = _logs(db, meds, days, at)
    for med in meds:
        d = by_patient[med.patient_id]
        fields = _med_fields(med)
        med_logs = logs.get(med.id, [])
        by_slot = {log.slot_key: log for log in med_logs if log.slot_key}
        late_after = LATE_AFTER_CRITICAL if med.time_critical else LATE_AFTER
        for occ in occurrences(med, d.patient, d.start, d.end):
            log = by_slot.get(occ.slot_key)
            if log is None:
                d.changes_at += (occ.at - DUE_BEFORE, occ.at + late_after, occ.at + MISSED_AFTER)
            d.doses.append(
                {
                    **fields,
                    "slot_key": occ.slot_key,
                    "local_time": occ.local_time,
                    "at": occ.at,
                    "status": dose_status(occ.at, log, med, at),
                    "log_id": log.id if log else None,
                    "taken_at": log.taken_at if log else None,
                }
            )
        for log in med_logs:
            if log.slot_key is None and d.start <= log.taken_at < d.end:
                d.extra_doses.append(
                    {
                        **fields,
                        "log_id": log.id,
                        "taken_at": log.taken_at,
                        "status": log.status,
                        "over_limit": log.over_limit,
                    }
                )
        if med.as_needed:
            status = prn_status(med, med_logs, at)
            d.prn.append({**fields, **status.__dict__})
            # A dose counts from when it is taken until it leaves the 24-hour window.
            for log in med_logs:
                d.changes_at += (log.taken_at, log.taken_at + timedelta(hours=24))
            if status.next_allowed_at is not None:
                d.changes_at.append(status.next_allowed_at)
    for d in days:
        d.doses.sort(key=lambda x: (x["at"], x["name"]))


def _med_fields(med: Medication) -> dict[str, Any]:
    return {
        "medication_id": med.id,
        "name": med.name,
        "strength": med.strength,
        "instructions": med.instructions,
        "time_critical": med.time_critical,
    }


def _logs(
    db: Session, meds: list[Medication], days: list[PatientDay], at: datetime
) -> dict[int, list[DoseLog]]:
    if not meds:
        return {}
    earliest = min(min(d.start for d in days), at - timedelta(hours=24)) - MATCH_LATE
    latest = max(max(d.end for d in days), at) + MATCH_LATE
    # The window is on taken_at OR scheduled_at: two index range scans combined (both
    # columns are indexed with medication_id), however long the history. A bitmap scan
    # returns rows in table order, so the order (oldest first, as before) is explicit.
    rows = db.scalars(
        select(DoseLog)
        .where(
            DoseLog.medication_id.in_([m.id for m in meds]),
            DoseLog.undone_at.is_(None),
            or_(
                and_(DoseLog.taken_at >= earliest, DoseLog.taken_at < latest),
                and_(DoseLog.scheduled_at >= earliest, DoseLog.scheduled_at < latest),
            ),
        )
        .order_by(DoseLog.taken_at, DoseLog.id)
    )
    out: dict[int, list[DoseLog]] = {}
    for log in rows:
        out.setdefault(log.medication_id, []).append(log)
    return out
