"""Adherence over the last 7, 30 or 90 days: dose-level adherence and a day-level PDC.

Definitions (all in the patient's current zone, for the ``days`` local calendar days ending
today, today included up to now):

* **Scheduled** doses are the occurrences of the medicine's schedule (FHIR Timing) that are
  *settled*: already logged (taken or skipped), or unlogged and more than ``MISSED_AFTER``
  (4 h, as on the today view) past their time. A dose still inside that window with no log
  yet is ``pending`` and counted nowhere else; future doses are not counted at all.
* **Taken**: a live (not undone) "taken" log matched to the slot. **Late** is the part of
  taken that was late (still counted as taken). **Skipped**: a live "skipped" log.
  **Missed**: scheduled and not logged at all.
* **Dose adherence** = taken / scheduled (``None`` when nothing is scheduled).
* **PDC** here is the *day-level* "proportion of days covered" of a reminder app, **not** the
  pharmacy-claims PDC (days' supply dispensed / days in the period): days on which every
  scheduled dose was taken / days with at least one scheduled dose. Per patient, a day is
  covered when every scheduled dose of every medicine that day was taken.
* As-needed (PRN) medicines are excluded, as are extra doses (logs with no slot). Only
  active medicines count: a paused or stopped medicine has no schedule to measure against
  (the schedule engine expands active medicines only).

**Weekly** (:func:`weekly`): the same tallies split by local calendar week (Monday to
Sunday) over the last N weeks, this week so far included, for a trend chart.

Queries: one for the medicines and one for the logs, whatever the number of patients; each
distinct schedule (timing, routine, zone, policy, dates) is expanded once per call, and a
plain daily or weekly schedule that started well before the window once whatever its dates
(see :func:`_dates_free_key`): on a panel, most medicines share a handful of those.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import DoseLog, Medication, Patient
from backend.reminders.timeline import MISSED_AFTER
from backend.schedule import Routine, Timing, day_pattern
from backend.schedule.medicines import expansion_key, local_day, occurrences, routine_of, timing_of

PERIODS = (7, 30, 90)
# A log's scheduled_at is the slot's instant when it was logged; travel can move the slot's
# instant since (zones are at most 26 h apart), so a live log answers a slot of its medicine
# with its key when its scheduled_at lies within this of the slot's instant: a rule of the
# slot alone, whatever the window or the other patients computed with it (what lets a settled
# day's tally be kept, backend/services/adherence_counts).
_LOG_SLACK = timedelta(days=2)
# A medicine that started at least this long before the window (and does not end in it) has
# the same slots in the window whatever its dates, if its schedule is plain (below). More
# than the days a slot can lie from its dosing day, and than a home zone's date can differ.
_SETTLED_START = timedelta(days=7)


@dataclass
class Tally:
    scheduled: int = 0
    taken: int = 0
    late: int = 0
    skipped: int = 0
    pending: int = 0
    # local date -> covered so far (every settled dose that day taken)
    days: dict[date, bool] = field(default_factory=dict)
    # The newest missed dose, and the newest dose not taken (missed or skipped): the
    # evidence behind the worklist's missed-dose and low-adherence items.
    last_missed_at: datetime | None = None
    last_not_taken_at: datetime | None = None

    @property
    def missed(self) -> int:
        return self.scheduled - self.taken - self.skipped

    @property
    def dose_adherence(self) -> float | None:
        return ratio(self.taken, self.scheduled)

    @property
    def days_with_doses(self) -> int:
        return len(self.days)

    @property
    def days_covered(self) -> int:
        return sum(1 for covered in self.days.values() if covered)

    @property
    def pdc(self) -> float | None:
        return ratio(self.days_covered, len(self.days))

    def add(self, day: date, status: str | None, late: bool, when: datetime) -> None:
        self.scheduled += 1
        if status == "taken":
            self.taken += 1
            self.late += int(late)
        else:
            self.skipped += status == "skipped"
            self.last_not_taken_at = max(self.last_not_taken_at or when, when)
            if status is None:
                self.last_missed_at = max(self.last_missed_at or when, when)
        self.days[day] = self.days.get(day, True) and status == "taken"

    def as_dict(self) -> dict[str, Any]:
        return tally_view(
            self.scheduled,
            self.taken,
            self.late,
            self.skipped,
            self.pending,
            self.days_with_doses,
            self.days_covered,
        )


def ratio(part: int, whole: int) -> float | None:
    """Dose adherence and PDC: to 4 places, None when there is nothing to measure."""
    return round(part / whole, 4) if whole else None


def tally_view(
    scheduled: int,
    taken: int,
    late: int,
    skipped: int,
    pending: int,
    days_with_doses: int,
    days_covered: int,
) -> dict[str, Any]:
    """A tally as the API and the snapshots show it."""
    return {
        "scheduled": scheduled,
        "taken": taken,
        "late": late,
        "skipped": skipped,
        "missed": scheduled - taken - skipped,
        "pending": pending,
        "days_with_doses": days_with_doses,
        "days_covered": days_covered,
        "dose_adherence": ratio(taken, scheduled),
        "pdc": ratio(days_covered, days_with_doses),
    }


@dataclass
class PatientAdherence:
    patient: Patient
    start: datetime
    end: datetime
    overall: Tally
    medications: list[tuple[Medication, Tally]]
    # By week (the local Monday it starts on), overall and per medicine id: filled only when
    # asked for (``adherence(..., by_week=True)``; see :func:`weekly`).
    weeks: dict[date, Tally] = field(default_factory=dict)
    medication_weeks: dict[int, dict[date, Tally]] = field(default_factory=dict)


def overall(results: Iterable[PatientAdherence]) -> dict[int, dict[str, Any]]:
    """Each patient's overall tally as ``Tally.as_dict()`` gives it, by patient id."""
    return {r.patient.id: r.overall.as_dict() for r in results}


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def window(patient: Patient, days: int, at: datetime) -> tuple[datetime, datetime]:
    """[local midnight ``days - 1`` days before today, now) in the patient's zone."""
    return window_start(patient.time_zone, days, at), at


def window_start(zone: str, days: int, at: datetime) -> datetime:
    today = at.astimezone(ZoneInfo(zone)).date()
    start, _ = local_day(today - timedelta(days=days - 1), zone)
    return start


def _dates_free(timing: Timing) -> bool:
    """Whether the schedule's dosing days and slots are the same for every start date that
    precedes them (``backend/schedule/expand``): a calendar schedule on every day or on given
    weekdays every week, with no bounds and no count. Every other one (every 2nd day, 3 a week
    from the start's weekday, monthly, hourly, bounded, counted) takes its phase or its limits
    from the start."""
    return (
        timing.kind == "calendar"
        and timing.step == 1
        and (timing.unit == "d" or (timing.unit == "wk" and bool(timing.day_of_week)))
        and timing.day_offsets == (0,)
        and timing.bounds_start is None
        and timing.bounds_end is None
        and timing.bounds_duration is None
        and timing.max_count is None
    )


def dates_free_pattern(timing: Timing, routine: Routine) -> tuple[Any, ...] | None:
    """What a plain schedule's slots depend on besides the zone and the window (its dosing
    days and its slots within a day on this routine); None for any other schedule."""
    if not _dates_free(timing):
        return None
    return (timing.unit, timing.day_of_week, day_pattern(timing, routine))


def dates_free_limits(zone: str, start: datetime, end: datetime) -> tuple[date, date]:
    """The latest start date and the earliest end date with which a plain schedule has the
    same slots in [start, end) whatever its dates."""
    local = ZoneInfo(zone)
    return (
        (start.astimezone(local) - _SETTLED_START).date(),
        (end.astimezone(local) + _SETTLED_START).date(),
    )


def dates_free_key(
    pattern: tuple[Any, ...] | None,
    limits: tuple[date, date],
    start_date: date,
    end_date: date | None,
    tz_policy: str,
    home_zone: str,
    zone: str,
    start: datetime,
    end: datetime,
) -> tuple[Any, ...] | None:
    """For an active medicine whose slots in [start, end) do not depend on its start and end
    dates (a plain schedule, ``pattern``, started at least ``_SETTLED_START`` before the
    window and not ending within it, ``limits``): what its expansion depends on, which is the
    pattern, the zone it is computed in (the home zone for a ``home`` policy, else the
    patient's) and the window. None for every other medicine."""
    if pattern is None or start_date > limits[0]:
        return None
    if end_date is not None and end_date < limits[1]:
        return None
    return ("dates-free", pattern, home_zone if tz_policy == "home" else zone, start, end)


def _dates_free_key(
    med: Medication, patient: Patient, start: datetime, end: datetime
) -> tuple[Any, ...] | None:
    """:func:`dates_free_key` of a medicine and its patient."""
    timing = timing_of(med)
    if timing is None or med.status != "active":
        return None
    return dates_free_key(
        dates_free_pattern(timing, routine_of(patient)),
        dates_free_limits(patient.time_zone, start, end),
        med.start_date,
        med.end_date,
        med.tz_policy,
        med.home_time_zone,
        patient.time_zone,
        start,
        end,
    )


def adherence(
    db: Session, patients: Sequence[Patient], days: int, at: datetime, by_week: bool = False
) -> list[PatientAdherence]:
    """Adherence of each patient (in the given order) and of each of their scheduled medicines;
    with ``by_week``, also split by the local week (Monday to Sunday) each dose fell in."""
    if not patients:
        return []
    windows = {p.id: window(p, days, at) for p in patients}
    meds = list(
        db.scalars(
            select(Medication)
            .where(
                Medication.patient_id.in_(windows),
                Medication.status == "active",
                Medication.as_needed.is_(False),
            )
            .order_by(Medication.name, Medication.id)
        )
    )
    logged = _logs(db, meds, min(s for s, _ in windows.values()) - _LOG_SLACK, at + _LOG_SLACK)
    by_id = {p.id: p for p in patients}
    results = {
        p.id: PatientAdherence(p, *windows[p.id], overall=Tally(), medications=[]) for p in patients
    }
    expanded: dict[tuple[Any, ...], list[tuple[date, str, datetime]]] = {}
    for med in meds:
        if not med.timing:  # JSON null: no schedule (the query cannot tell it from SQL NULL)
            continue
        patient = by_id[med.patient_id]
        result = results[patient.id]
        key = _dates_free_key(med, patient, result.start, result.end) or expansion_key(med, patient)
        slots = expanded.get(key)
        if slots is None:
            slots = [
                (o.local_date, o.slot_key, o.at)
                for o in occurrences(med, patient, result.start, result.end)
            ]
            expanded[key] = slots
        tally = Tally()
        med_weeks = result.medication_weeks.setdefault(med.id, {}) if by_week else {}
        for day, slot_key, when in slots:
            found = logged.get((med.id, slot_key))
            log_at = found[2] if found is not None else None
            near = log_at is not None and when - _LOG_SLACK <= log_at < when + _LOG_SLACK
            log = found[:2] if found is not None and near else None
            tallies = [tally, result.overall]
            if by_week:
                monday = monday_of(day)
                tallies += [
                    result.weeks.setdefault(monday, Tally()),
                    med_weeks.setdefault(monday, Tally()),
                ]
            if log is None and when + MISSED_AFTER > at:
                for t in tallies:
                    t.pending += 1
                continue
            status, late = log if log is not None else (None, False)
            for t in tallies:
                t.add(day, status, late, when)
        result.medications.append((med, tally))
    return [results[p.id] for p in patients]


def _logs(
    db: Session, meds: list[Medication], start: datetime, end: datetime
) -> dict[tuple[int, str], tuple[str, bool, datetime | None]]:
    """(medication id, slot key) -> (status, late, scheduled_at) of the live slot logs."""
    if not meds:
        return {}
    rows = db.execute(
        select(
            DoseLog.medication_id,
            DoseLog.slot_key,
            DoseLog.status,
            DoseLog.late,
            DoseLog.scheduled_at,
        ).where(
            DoseLog.medication_id.in_([m.id for m in meds]),
            DoseLog.undone_at.is_(None),
            DoseLog.slot_key.is_not(None),
            DoseLog.scheduled_at >= start,
            DoseLog.scheduled_at < end,
        )
    ).all()  # one fetch: iterating the result fetches row by row (~15 us a row on psycopg)
    return {(mid, key or ""): (status, bool(late), when) for mid, key, status, late, when in rows}


MAX_WEEKS = 26


@dataclass
class WeeklyAdherence:
    """A patient's adherence week by week, oldest first: ``mondays`` are the local Mondays
    the weeks start on, the last one this week's (today included up to now)."""

    result: PatientAdherence
    mondays: list[date]

    def series(self, weeks: dict[date, Tally]) -> list[tuple[date, Tally]]:
        """Every week of the window, an empty tally for a week with nothing scheduled."""
        return [(m, weeks.get(m) or Tally()) for m in self.mondays]


def weekly(db: Session, patient: Patient, weeks: int, at: datetime) -> WeeklyAdherence:
    """The last ``weeks`` local calendar weeks (Monday to Sunday, this one so far), each with
    the same definitions as the 7/30/90-day figures, overall and per medicine, for a chart."""
    today = at.astimezone(ZoneInfo(patient.time_zone)).date()
    first = monday_of(today) - timedelta(weeks=weeks - 1)
    (result,) = adherence(db, [patient], (today - first).days + 1, at, by_week=True)
    return WeeklyAdherence(result, [first + timedelta(weeks=i) for i in range(weeks)])
