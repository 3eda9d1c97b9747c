"""The "today" view: for the signed-in person and each patient they care for, in the
patient's own zone, what is due, what was done, and what is coming.

A fixed number of queries whatever the number of patients or medicines (no N+1):
who is cared for (2), medicines (1), dose logs (1), appointments (1), care plans (1),
check-in schedules (1) and, when there are any, their answers (1) and, for a caregiver, the
templates kept from caregivers (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from backend.access import Action, PatientAccess, patients_cared_for, record_access
from backend.clock import now
from backend.models import Appointment, CarePlan, CheckinSchedule, DoseLog, Medication, User
from backend.reminders import checkin_prompts
from backend.reminders.timeline import (
    DUE_BEFORE,
    LATE_AFTER,
    LATE_AFTER_CRITICAL,
    MATCH_LATE,
    MISSED_AFTER,
)
from backend.schedule.medicines import local_day, occurrences, prn_status
from backend.services import checkins


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
    access: PatientAccess
    day: date
    start: datetime
    end: datetime
    doses: list[dict[str, Any]] | None = None
    prn: list[dict[str, Any]] | None = None
    extra_doses: list[dict[str, Any]] | None = None
    appointments: list[Appointment] | None = None
    activities: list[dict[str, Any]] | None = None
    checkins: list[dict[str, Any]] | None = None


def build_today(db: Session, user: User, requested: date | None) -> list[PatientDay]:
    at = now()
    days: list[PatientDay] = []
    for access in patients_cared_for(user):
        zone = access.patient.time_zone
        day = requested or at.astimezone(ZoneInfo(zone)).date()
        start, end = local_day(day, zone)
        days.append(PatientDay(access, day, start, end))
    for d in days:  # one read of each person's day, in their log (not the patient's own)
        record_access(d.access, "view_today")
    _fill_doses(db, _allowed(days, Action.VIEW_MEDICATIONS), at)
    _fill_appointments(db, _allowed(days, Action.VIEW_APPOINTMENTS))
    _fill_activities(db, _allowed(days, Action.VIEW_CARE_PLAN))
    _fill_checkins(db, days, _allowed(days, Action.VIEW_CHECKINS), at)
    return days


def _allowed(days: list[PatientDay], action: Action) -> list[PatientDay]:
    return [d for d in days if d.access.allows(action)]


def _fill_appointments(db: Session, days: list[PatientDay]) -> None:
    if not days:
        return
    by_patient = {d.access.patient.id: d for d in days}
    for d in days:
        d.appointments = []
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
            assert d.appointments is not None
            d.appointments.append(appt)


def _fill_activities(db: Session, days: list[PatientDay]) -> None:
    if not days:
        return
    by_patient = {d.access.patient.id: d for d in days}
    for d in days:
        d.activities = []
    plans = db.scalars(
        select(CarePlan).where(CarePlan.patient_id.in_(by_patient), CarePlan.status == "active")
    )
    for plan in plans:
        d = by_patient[plan.patient_id]
        assert d.activities is not None
        d.activities.extend(
            {**a, "plan_id": plan.id} for a in plan.activities if a.get("status") == "open"
        )


def _fill_checkins(
    db: Session, days: list[PatientDay], allowed: list[PatientDay], at: datetime
) -> None:
    """The check-in prompts due each day, with their status (backend.services.checkin_schedules).
    The schedules are asked for whenever anyone is shown, even when no day may show them, so
    the number of queries does not depend on whom one cares for."""
    if not days:
        return
    by_patient = {d.access.patient.id: d for d in allowed}
    for d in allowed:
        d.checkins = []
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
    if any(d.access.is_caregiver for d in allowed):
        # Answers a caregiver never sees (SOCIAL-NEEDS): nor are their prompts shown.
        hidden = checkins.hidden_from_caregivers(db, {s.template_key for s in schedules})
        schedules = [
            s
            for s in schedules
            if s.template_key not in hidden or not by_patient[s.patient_id].access.is_caregiver
        ]
        if not schedules:
            return
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
        assert d.checkins is not None
        margin = (
            schedule.answer_within + checkin_prompts.EARLY
        )  # earlier prompts may take today's answers
        occs = checkin_prompts.prompt_occurrences(
            schedule, d.access.patient, d.start - margin, d.end
        )
        given = answers.get((schedule.patient_id, schedule.template_key), [])
        for p in checkin_prompts.prompts(schedule, occs, given, at):
            if d.start <= p.due_at < d.end:
                d.checkins.append(
                    {
                        "schedule_id": schedule.id,
                        "template": schedule.template_code,
                        "template_organization_id": schedule.template_organization_id,
                        "due_at": p.due_at,
                        "answer_by": p.deadline,
                        "status": p.status,
                        "response_id": p.response_id,
                    }
                )
    for d in allowed:
        assert d.checkins is not None
        d.checkins.sort(key=lambda c: (c["due_at"], c["schedule_id"]))


def _fill_doses(db: Session, days: list[PatientDay], at: datetime) -> None:
    if not days:
        return
    by_patient = {d.access.patient.id: d for d in days}
    meds = list(
        db.scalars(
            select(Medication)
            .where(Medication.patient_id.in_(by_patient), Medication.status == "active")
            .order_by(Medication.name, Medication.id)
        )
    )
    logs = _logs(db, meds, days, at)
    for d in days:
        d.doses, d.prn, d.extra_doses = [], [], []
    for med in meds:
        d = by_patient[med.patient_id]
        fields = _med_fields(med)
        med_logs = logs.get(med.id, [])
        by_slot = {log.slot_key: log for log in med_logs if log.slot_key}
        for occ in occurrences(med, d.access.patient, d.start, d.end):
            log = by_slot.get(occ.slot_key)
            assert d.doses is not None
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
                assert d.extra_doses is not None
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
            assert d.prn is not None
            d.prn.append({**fields, **status.__dict__})
    for d in days:
        assert d.doses is not None
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
