"""A medicine's schedule in the patient's zone, its supply left, and PRN limits: the
schedule engine applied to the medication and patient records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from backend.models import DoseLog, Medication, Patient
from backend.schedule import Occurrence, Routine, Timing, doses_per_day, expand
from backend.schedule.timing import cached_timing


class Scheduled(Protocol):
    """What the schedule engine reads of a medicine: a :class:`Medication`, or a plain row
    of the same columns (the planner reads a batch's medicines so, without ORM objects)."""

    @property
    def id(self) -> int: ...
    @property
    def patient_id(self) -> int: ...
    @property
    def timing(self) -> dict[str, Any] | None: ...
    @property
    def status(self) -> str: ...
    @property
    def start_date(self) -> date: ...
    @property
    def end_date(self) -> date | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def tz_policy(self) -> str: ...
    @property
    def home_time_zone(self) -> str: ...
    @property
    def time_critical(self) -> bool: ...
    @property
    def quantity_on_hand(self) -> float | None: ...
    @property
    def dose_amount(self) -> float: ...
    @property
    def refill_threshold_days(self) -> int | None: ...


def routine_of(patient: Patient) -> Routine:
    return Routine(
        wake=patient.wake_time,
        breakfast=patient.breakfast_time,
        lunch=patient.lunch_time,
        dinner=patient.dinner_time,
        bed=patient.bed_time,
    )


def anchor_of(med: Scheduled) -> datetime:
    """Where the schedule's cycle starts: midnight of the start date in the home zone."""
    return _anchor(med.start_date, med.home_time_zone)


def _anchor(start_date: date, home_zone: str) -> datetime:
    return datetime.combine(start_date, time(0, 0), tzinfo=ZoneInfo(home_zone))


def timing_of(med: Scheduled) -> Timing | None:
    return cached_timing(med.timing) if med.timing else None


def occurrences(
    med: Scheduled, patient: Patient, start: datetime, end: datetime
) -> list[Occurrence]:
    """Scheduled doses in [start, end) where the patient is now, within the medication's dates
    and never before the medicine starts (:func:`starts_at`)."""
    timing = timing_of(med)
    if timing is None or med.status != "active":
        return []
    return dated_occurrences(
        timing,
        routine_of(patient),
        patient.time_zone,
        MedicineDates(
            med.start_date, med.end_date, med.created_at, med.tz_policy, med.home_time_zone
        ),
        start,
        end,
    )


@dataclass(frozen=True)
class MedicineDates:
    """What of an active medicine, besides its schedule, says when its doses are."""

    start_date: date
    end_date: date | None
    created_at: datetime | None
    tz_policy: str
    home_time_zone: str


def dated_occurrences(
    timing: Timing, routine: Routine, zone: str, med: MedicineDates, start: datetime, end: datetime
) -> list[Occurrence]:
    """:func:`occurrences` of an active medicine from plain values (no records to build: the
    panel's counting in the database expands from rows)."""
    start = max(start, _starts_at(med.start_date, med.created_at, med.home_time_zone))
    if start >= end:
        return []
    found = expand(
        timing,
        routine,
        zone,
        start,
        end,
        anchor=_anchor(med.start_date, med.home_time_zone),
        policy=med.tz_policy,
        home_zone=med.home_time_zone,
    )
    return [
        o
        for o in found
        if o.local_date >= med.start_date and (med.end_date is None or o.local_date <= med.end_date)
    ]


def starts_at(med: Scheduled) -> datetime:
    """When a medicine's first dose can be: a medicine added at 21:20 "from today" has no 07:30
    dose that morning to miss or to log 14 hours late, so a start date on the day it was added
    (the default) means from the moment it was added; a start date in the past is the patient's
    word that they have taken it since then (their history can be logged), and one in the
    future starts at that day's first moment in the medicine's zone."""
    return _starts_at(med.start_date, med.created_at, med.home_time_zone)


def _starts_at(start_date: date, created: datetime | None, home_zone: str) -> datetime:
    zone = ZoneInfo(home_zone)
    if created is not None and created.astimezone(zone).date() == start_date:
        return created
    return datetime.combine(start_date, time.min, tzinfo=zone)


def patient_key(patient: Patient) -> tuple[Any, ...]:
    """What :func:`occurrences` reads of the patient (their routine and zone): the patient's
    part of :func:`expansion_key`, for a caller that keys many medicines of one patient."""
    return (
        patient.wake_time,
        patient.breakfast_time,
        patient.lunch_time,
        patient.dinner_time,
        patient.bed_time,
        patient.time_zone,
    )


def expansion_key(
    med: Scheduled,
    patient: Patient,
    timing_text: str | None = None,
    patient_part: tuple[Any, ...] | None = None,
) -> tuple[Any, ...]:
    """Everything :func:`occurrences` reads for a given window: equal keys, equal slots.
    Lets a run expand each distinct schedule once (the schedule's JSON text when the caller
    read it so, else the repr of its value: equal texts or reprs mean equal values; a
    differing one only misses the cache; a text never equals the repr of another value).
    ``patient_part``: :func:`patient_key` of ``patient``, when the caller has it."""
    return (
        repr(med.timing) if timing_text is None else timing_text,
        med.status,
        *(patient_key(patient) if patient_part is None else patient_part),
        med.tz_policy,
        med.home_time_zone,
        med.start_date,
        starts_at(med),
        med.end_date,
    )


@dataclass(frozen=True)
class Supply:
    days_left: float | None
    needs_refill: bool


# A tracked supply (quantity_on_hand set) with no refill threshold of its own asks for a
# refill at 7 days left: about the time a pharmacy needs to fill a prescription and the
# post to deliver it, and the "refill at 7 days" most dispensing programmes use.
DEFAULT_REFILL_THRESHOLD_DAYS = 7


def refill_threshold(med: Scheduled) -> int:
    """The medicine's own threshold in days of supply, else the default."""
    own = med.refill_threshold_days
    return DEFAULT_REFILL_THRESHOLD_DAYS if own is None else own


def supply(med: Scheduled, patient: Patient) -> Supply:
    """Days of supply left and whether to refill: at or under the threshold, or none left
    (an as-needed medicine has no days of supply; it needs a refill when it is empty)."""
    if med.quantity_on_hand is None:
        return Supply(None, False)  # not tracked
    empty = med.quantity_on_hand <= 0
    timing = timing_of(med)
    if timing is None:
        return Supply(None, empty)
    per_day = doses_per_day(timing, routine_of(patient)) * med.dose_amount
    if per_day <= 0:
        return Supply(None, empty)
    days = round(med.quantity_on_hand / per_day, 1)
    return Supply(days, empty or days <= refill_threshold(med))


@dataclass(frozen=True)
class PrnStatus:
    taken_last_24h: int
    max_per_24h: int | None
    last_taken_at: datetime | None
    next_allowed_at: datetime | None
    available_now: bool


def prn_status(med: Medication, recent: list[DoseLog], at: datetime) -> PrnStatus:
    """When the next as-needed dose is allowed, from the live 'taken' logs of the last 24 h."""
    taken = sorted(
        (
            log.taken_at
            for log in recent
            if log.is_live
            and log.status == "taken"
            and at - timedelta(hours=24) < log.taken_at <= at
        ),
    )
    candidates = [at]
    if med.prn_min_interval_minutes and taken:
        candidates.append(taken[-1] + timedelta(minutes=med.prn_min_interval_minutes))
    if med.prn_max_per_24h is not None and len(taken) >= med.prn_max_per_24h:
        # the oldest dose that keeps the count at the limit must leave the 24 h window
        candidates.append(taken[len(taken) - med.prn_max_per_24h] + timedelta(hours=24))
    next_allowed = max(candidates)
    return PrnStatus(
        taken_last_24h=len(taken),
        max_per_24h=med.prn_max_per_24h,
        last_taken_at=taken[-1] if taken else None,
        # None when a dose may be taken now (not "now": the answer stays true as time passes).
        next_allowed_at=next_allowed if next_allowed > at else None,
        available_now=next_allowed <= at,
    )


def local_day(day: date, zone: str) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of a local date: 23 or 25 hours on DST days."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0, 0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    return start, end
