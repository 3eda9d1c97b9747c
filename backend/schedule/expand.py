"""Expand a parsed FHIR ``Timing`` into dose occurrences: pure, no Flask, no database.

``expand(timing, routine, zone, window_start, window_end, *, anchor, policy, home_zone)``
returns the occurrences whose instant lies in ``[window_start, window_end)``, sorted by
instant, each with ``local_date``, ``slot_key``, ``local_time``, ``at`` (aware UTC) and
``zone``. Calendar steps use ``dateutil.rrule``; local times become instants with
``zoneinfo``.

Zones and policy
----------------
- ``policy="local"`` (default): wall-clock times in ``zone`` (where the patient is now); when
  the patient travels the 08:00 dose is at 08:00 in the new zone.
- ``policy="home"``: everything is computed in ``home_zone`` and keeps those instants wherever
  the patient is; ``local_date``/``local_time`` are reported in the home zone and
  ``Occurrence.zone`` says so (the caller converts for display).
- Dates (date-only bounds, "today") and the routine are read in that computation zone.

Daylight saving time (RFC 5545 section 3.3.5)
---------------------------------------------
- A wall-clock time that does not exist (spring forward) takes the UTC offset from before the
  gap: 02:30 in New York on the spring-forward day is 07:30 UTC = 03:30 EDT.
- A wall-clock time that occurs twice (fall back) is the first occurrence and fires once.
  (Both are PEP 495 ``fold=0`` in ``zoneinfo``.)
- ``local_time`` is the wall-clock time of the actual instant (03:30 above); the ``slot_key``
  keeps the nominal time (``...T02:30``) so the slot is the same every day.
- Two slots of one timing that land on the same instant (only possible on a spring-forward
  day, e.g. 02:00 and 03:00 hourly, or ``MORN`` and ``CM`` both at breakfast) are one dose:
  the slot with the earlier nominal time keeps it.

Hourly periods
--------------
- An interval that divides 24 h (Q1H, Q2H, Q3H, Q4H, Q6H, Q8H, Q12H, 24 h, "3 per 12 h")
  is a wall-clock grid, exactly like ``timeOfDay``: the times are the routine's wake time
  (or the one ``timeOfDay`` given) plus multiples of the interval, modulo 24 h. Q4H with wake
  07:00 = 03:00, 07:00, 11:00, 15:00, 19:00, 23:00 every local day. Across DST the grid
  follows the RFC 5545 rules above: every grid time fires once per local day, so the
  interval around the transition is one hour shorter or longer (a 23 h day has 23 Q1H doses,
  a 25 h day 24) and there is never a duplicate or a missing slot.
- A whole number of days (48 h, 72 h) is every N days at the wake time (or ``timeOfDay``).
- Grid slot keys are the nominal grid times (``YYYY-MM-DDT03:00``): they follow the wake time,
  so a changed wake time renames the hourly slots (and a changed ``timeOfDay`` its slot).
- Any other interval (Q5H, Q7H, "2 per 9 h") drifts through the day by nature: it is kept in
  elapsed time, UTC instants ``origin + k x interval`` (origin = the bounds start, or the
  anchor), unaffected by DST or travel. Its ``slot_key`` is the UTC instant.

Frequency without times: the rule for picking times
---------------------------------------------------
Doses per dosing day without ``timeOfDay``/``when`` are placed on the routine:
1 = breakfast; 2 = breakfast, dinner; 3 = breakfast, lunch, dinner; 4 = breakfast, lunch,
dinner, bed; 5..24 = evenly from wake to bed inclusive (whole minutes, rounded down).
Slot keys ``YYYY-MM-DD#iofn`` (e.g. ``2026-11-25#2of3``) so a changed routine keeps the slot.

Dosing days
-----------
- ``d``: every ``period`` days from the origin's local date (the ``boundsPeriod.start``, else
  the anchor): QOD is the anchor day, +2, +4...; "2 per 4 d" = every 2nd day.
- ``wk`` without ``dayOfWeek``: ``n`` doses per ``period`` weeks fall on cycle days
  ``floor(i x 7 x period / n)`` from the origin's weekday: 3/week from a Monday =
  Mon, Wed, Fri; 2/week = Mon, Thu; 1/week = the origin's weekday.
- ``dayOfWeek``: those weekdays (every ``period`` weeks counted from the origin's ISO week).
- ``mo``/``a``: the origin's day of the month (clamped to the month's last day: the 31st is
  Feb 28/29, Apr 30...), every ``period`` months/years.

``when`` codes on the routine (wake, breakfast, lunch, dinner, bed; a bed time before wake is
after midnight); ``offset`` minutes are after the event unless the code says before:
WAKE, MORN.early = wake; MORN = breakfast; MORN.late = midway breakfast-lunch; NOON = lunch;
AFT.early/AFT/AFT.late = 1/4, 1/2, 3/4 of the way lunch-dinner; EVE.early = dinner;
EVE = midway dinner-bed; EVE.late = 3/4 of the way dinner-bed; NIGHT, PHS = bed (offset
after); HS = bed (offset *before*); C* = at the meal (no offset, tim-9); AC* = ``offset``
(default 30) minutes before the meal; PC* = ``offset`` (default 30) minutes after. The
generic C/AC/PC are the three meals. A time pushed past midnight belongs to its dosing day
(key ``YYYY-MM-DD#CODE``) but is reported on its real local date.

Bounds, anchor and count
------------------------
- Nothing before ``anchor`` (the medication's start instant) or before ``boundsPeriod.start``.
- ``boundsPeriod.end`` is inclusive (a date-only end covers that whole local day).
- ``boundsDuration`` runs from the anchor: ``d``/``wk``/``mo``/``a`` on the wall clock,
  ``h``/``min``/``s`` in elapsed time; the end is exclusive.
- ``count`` (``countMax`` if given) counts from the first occurrence at or after the start,
  whatever the window: a window after the count is used up is empty.
- ``once`` (``count: 1`` alone) is at the later of the anchor and the bounds start (a
  date-only start means the wake time that day).
- ``event`` instants are explicit: neither the anchor nor the routine moves them.

``doses_per_day(timing, routine)`` is the average number of doses per day over one cycle (for
days of supply): calendar = slots per dosing day x dosing days per cycle / cycle days (a month
= 30.436875 days, a year = 365.2425), hourly = 1440 / interval minutes, events = their number
over the UTC days they span, once = 0.0 (no recurring use). Merged DST collisions are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MO, MONTHLY, WEEKLY, rrule, rruleset, weekday

from backend.schedule.timing import DAY_CODES, Slot, Timing

__all__ = [
    "AC_DEFAULT_OFFSET",
    "DEFAULT_ROUTINE",
    "PC_DEFAULT_OFFSET",
    "Occurrence",
    "Routine",
    "day_pattern",
    "default_times",
    "doses_per_day",
    "expand",
    "resolve_local",
    "when_minutes",
]

#: Minutes before the meal for AC/ACM/ACD/ACV without an ``offset``.
AC_DEFAULT_OFFSET = 30
#: Minutes after the meal for PC/PCM/PCD/PCV without an ``offset``.
PC_DEFAULT_OFFSET = 30

Policy = Literal["local", "home"]
_DAY = 1440
_MONTH_DAYS = 365.2425 / 12
_WEEKDAYS: tuple[weekday, ...] = tuple(weekday(i) for i in range(7))


@dataclass(frozen=True)
class Routine:
    """The patient's day, as wall-clock times in their zone."""

    wake: time = time(7, 0)
    breakfast: time = time(8, 0)
    lunch: time = time(12, 0)
    dinner: time = time(18, 0)
    bed: time = time(22, 0)


DEFAULT_ROUTINE = Routine()


@dataclass(frozen=True)
class Occurrence:
    """One scheduled dose.

    ``slot_key`` is unique per medication per occurrence and stable across days, travel and
    DST: ``YYYY-MM-DDTHH:MM`` (timeOfDay, hourly grid; nominal time), ``YYYY-MM-DD#CODE``
    (when), ``YYYY-MM-DD#iofn`` (times picked from the frequency), ``YYYY-MM-DDTHH:MMZ`` (elapsed
    hourly and events: the UTC instant), ``once``.
    """

    local_date: date
    slot_key: str
    local_time: time
    at: datetime
    zone: str


# --------------------------------------------------------------------------- time helpers


def resolve_local(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall-clock datetime in ``tz`` to an aware UTC instant, per RFC 5545 3.3.5:
    a time in a gap takes the offset before the gap; a repeated time is the first one."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _routine_points(routine: Routine) -> dict[str, int]:
    """Routine times as minutes from the dosing day's midnight; times before wake are taken as
    after midnight (e.g. bed at 00:30)."""
    wake = _minutes(routine.wake)
    points = {"wake": wake}
    for name in ("breakfast", "lunch", "dinner", "bed"):
        m = _minutes(getattr(routine, name))
        points[name] = m if m >= wake else m + _DAY
    return points


def when_minutes(code: str, offset: int | None, routine: Routine) -> int:
    """Minutes from the dosing day's midnight for a specific (non-generic) ``when`` code."""
    r = _routine_points(routine)
    meal = {"M": r["breakfast"], "D": r["lunch"], "V": r["dinner"]}
    lunch_dinner = r["dinner"] - r["lunch"]
    dinner_bed = r["bed"] - r["dinner"]
    after = offset or 0
    base: dict[str, int] = {
        "WAKE": r["wake"],
        "MORN.early": r["wake"],
        "MORN": r["breakfast"],
        "MORN.late": (r["breakfast"] + r["lunch"]) // 2,
        "NOON": r["lunch"],
        "AFT.early": r["lunch"] + lunch_dinner // 4,
        "AFT": r["lunch"] + lunch_dinner // 2,
        "AFT.late": r["lunch"] + (3 * lunch_dinner) // 4,
        "EVE.early": r["dinner"],
        "EVE": r["dinner"] + dinner_bed // 2,
        "EVE.late": r["dinner"] + (3 * dinner_bed) // 4,
        "NIGHT": r["bed"],
        "PHS": r["bed"],
    }
    if code in base:
        return base[code] + after
    if code == "HS":
        return r["bed"] - after
    if len(code) == 2 and code[0] == "C":
        return meal[code[1]]
    if len(code) == 3 and code[:2] == "AC":
        return meal[code[2]] - (AC_DEFAULT_OFFSET if offset is None else offset)
    if len(code) == 3 and code[:2] == "PC":
        return meal[code[2]] + (PC_DEFAULT_OFFSET if offset is None else offset)
    raise ValueError(f"not a specific when code: {code!r}")


def default_times(n: int, routine: Routine) -> list[int]:
    """Minutes from midnight for ``n`` doses a day without given times (module docstring)."""
    r = _routine_points(routine)
    named = {
        1: ["breakfast"],
        2: ["breakfast", "dinner"],
        3: ["breakfast", "lunch", "dinner"],
        4: ["breakfast", "lunch", "dinner", "bed"],
    }
    if n in named:
        return [r[name] for name in named[n]]
    span = r["bed"] - r["wake"]
    return [r["wake"] + (i * span) // (n - 1) for i in range(n)]


@dataclass(frozen=True)
class _DaySlot:
    minutes: int  # from the dosing day's midnight (may be < 0 or >= 1440)
    seconds: int
    suffix: str  # slot key after the date


def day_pattern(timing: Timing, routine: Routine) -> tuple[tuple[int, int, str], ...]:
    """A calendar or grid schedule's slots within one dosing day on this routine (minutes
    from the dosing day's midnight, seconds, slot-key suffix): with its dosing days, the zone
    and the window, all its occurrences depend on (callers compare these to share one
    expansion between medicines)."""
    return tuple((s.minutes, s.seconds, s.suffix) for s in _day_slots(timing, routine))


def _day_slots(timing: Timing, routine: Routine) -> list[_DaySlot]:
    if timing.kind == "grid":
        assert timing.interval_minutes is not None
        phase = timing.grid_phase or routine.wake
        start = _minutes(phase)
        out = []
        for k in range(_DAY // timing.interval_minutes):
            m = (start + k * timing.interval_minutes) % _DAY
            out.append(_DaySlot(m, phase.second, f"T{_hhmm(m, phase.second)}"))
        return sorted(out, key=lambda s: s.minutes)
    defaults: list[int] = []
    out = []
    for slot in timing.slots:
        out.append(_slot(slot, routine, defaults))
    return sorted(out, key=lambda s: (s.minutes, s.seconds))


def _slot(slot: Slot, routine: Routine, defaults: list[int]) -> _DaySlot:
    if slot.kind == "time":
        assert slot.time is not None
        t = slot.time
        return _DaySlot(_minutes(t), t.second, f"T{_hhmm(_minutes(t), t.second)}")
    if slot.kind == "when":
        assert slot.code is not None
        return _DaySlot(when_minutes(slot.code, slot.offset, routine), 0, f"#{slot.code}")
    if not defaults:
        defaults.extend(default_times(slot.of, routine))
    return _DaySlot(defaults[slot.index - 1], 0, f"#{slot.index}of{slot.of}")


def _hhmm(minutes: int, seconds: int = 0) -> str:
    text = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def _utc_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ" if at.second else "%Y-%m-%dT%H:%MZ")


# --------------------------------------------------------------------------- dosing days


def _as_dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)  # noqa: DTZ001 - naive on purpose: rrule dates


def _dosing_days(timing: Timing, origin: date, first: date, last: date) -> Iterable[date]:
    """Dosing dates in ``[first, last]`` (``first`` may precede ``origin``), via rrule."""
    start = max(origin, first)
    until = _as_dt(last)
    if start > last:
        return []
    unit, step = timing.unit, timing.step
    if timing.day_of_week:
        days = [_WEEKDAYS[DAY_CODES.index(d)] for d in timing.day_of_week]
        if unit == "d":
            rule = rrule(DAILY, byweekday=days, dtstart=_as_dt(start), until=until)
            return (dt.date() for dt in rule)
        week0 = origin - timedelta(days=origin.weekday())
        cycles = (start - week0).days // (7 * step)
        dtstart = origin if cycles == 0 else week0 + timedelta(days=7 * step * cycles)
        rule = rrule(
            WEEKLY, interval=step, byweekday=days, wkst=MO, dtstart=_as_dt(dtstart), until=until
        )
        return (dt.date() for dt in rule if dt.date() >= start)
    if unit in {"mo", "a"}:
        months = step if unit == "mo" else 12 * step
        elapsed = (start.year - origin.year) * 12 + start.month - origin.month
        cycles = max(0, elapsed // months)
        if cycles:
            shifted = origin + relativedelta(months=months * cycles)
            dtstart = date(shifted.year, shifted.month, 1)
        else:
            dtstart = origin
        day = origin.day
        if day <= 28:
            rule = rrule(
                MONTHLY, interval=months, bymonthday=day, dtstart=_as_dt(dtstart), until=until
            )
        else:  # the 29th-31st, or the month's last day when it is shorter
            rule = rrule(
                MONTHLY,
                interval=months,
                bymonthday=tuple(range(28, day + 1)),
                bysetpos=-1,
                dtstart=_as_dt(dtstart),
                until=until,
            )
        return (dt.date() for dt in rule if dt.date() >= start)
    cycle = step if unit == "d" else 7 * step
    cycles = max(0, (start - origin).days // cycle - 1)
    base = origin + timedelta(days=cycle * cycles)
    rules = [
        rrule(DAILY, interval=cycle, dtstart=_as_dt(base + timedelta(days=day_offset)), until=until)
        for day_offset in timing.day_offsets
    ]
    if len(rules) == 1:  # the usual case: one dosing day per cycle, no set to merge
        return (dt.date() for dt in rules[0] if dt.date() >= start)
    merged = rruleset()  # lazy and in order, so a `count` can stop early
    for rule in rules:
        merged.rrule(rule)
    return (dt.date() for dt in merged if dt.date() >= start)


# --------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class _Frame:
    tz: ZoneInfo
    zone: str
    lower: datetime  # nothing before
    upper: datetime | None  # nothing at or after
    origin: datetime  # phase of hourly/once
    origin_date: date  # phase of dosing days


def _frame(timing: Timing, routine: Routine, tz: ZoneInfo, zone: str, anchor: datetime) -> _Frame:
    start_instant: datetime | None = None
    start = timing.bounds_start
    if isinstance(start, datetime):
        start_instant = start.astimezone(UTC)
        origin, origin_date = start_instant, start.astimezone(tz).date()
    elif isinstance(start, date):
        start_instant = resolve_local(_as_dt(start), tz)
        origin = resolve_local(datetime.combine(start, routine.wake), tz)
        origin_date = start
    else:
        origin, origin_date = anchor, anchor.astimezone(tz).date()
    lower = anchor if start_instant is None else max(anchor, start_instant)

    upper: datetime | None = None
    end = timing.bounds_end
    if isinstance(end, datetime):
        upper = end.astimezone(UTC) + timedelta(microseconds=1)
    elif isinstance(end, date):
        upper = resolve_local(_as_dt(end + timedelta(days=1)), tz)
    if timing.bounds_duration is not None:
        value, unit = timing.bounds_duration
        if unit in {"s", "min", "h"}:
            seconds = float(value) * {"s": 1, "min": 60, "h": 3600}[unit]
            until = anchor + timedelta(seconds=seconds)
        else:
            n = int(value)
            delta = {
                "d": relativedelta(days=n),
                "wk": relativedelta(weeks=n),
                "mo": relativedelta(months=n),
                "a": relativedelta(years=n),
            }[unit]
            wall = anchor.astimezone(tz).replace(tzinfo=None) + delta
            until = resolve_local(wall, tz)
        upper = until if upper is None else min(upper, until)
    return _Frame(tz, zone, lower, upper, origin, origin_date)


def _occurrence(at: datetime, key: str, frame: _Frame) -> Occurrence:
    local = at.astimezone(frame.tz)
    return Occurrence(
        local_date=local.date(),
        slot_key=key,
        local_time=local.time().replace(fold=0),
        at=at,
        zone=frame.zone,
    )


def _in_frame(at: datetime, frame: _Frame) -> bool:
    return at >= frame.lower and (frame.upper is None or at < frame.upper)


def expand(
    timing: Timing,
    routine: Routine,
    zone: str,
    window_start: datetime,
    window_end: datetime,
    *,
    anchor: datetime,
    policy: str = "local",
    home_zone: str | None = None,
) -> list[Occurrence]:
    """The occurrences of ``timing`` with ``window_start <= at < window_end`` (module doc)."""
    if policy not in {"local", "home"}:
        raise ValueError(f"unknown time-zone policy {policy!r} (local or home)")
    if policy == "home" and not home_zone:
        raise ValueError("policy 'home' needs a home_zone")
    zone_name = home_zone if policy == "home" and home_zone else zone
    tz = _zone(zone_name)
    window_start = _aware(window_start, "window_start")
    window_end = _aware(window_end, "window_end")
    anchor = _aware(anchor, "anchor")
    if window_end <= window_start:
        return []

    if timing.kind == "events":
        frame = _Frame(tz, zone_name, window_start, window_end, window_start, date.min)
        return [
            _occurrence(at.astimezone(UTC), _utc_key(at), frame)
            for at in timing.events
            if window_start <= at < window_end
        ]

    frame = _frame(timing, routine, tz, zone_name, anchor)
    lo = max(frame.lower, window_start)
    hi = window_end if frame.upper is None else min(frame.upper, window_end)
    if lo >= hi:
        return []
    limit = timing.max_count

    if timing.kind == "once":
        at = max(frame.origin, frame.lower)
        ok = _in_frame(at, frame) and window_start <= at < window_end
        return [_occurrence(at, "once", frame)] if ok else []

    if timing.kind == "elapsed":
        return _expand_elapsed(timing, frame, lo, hi, limit)
    return _expand_calendar(timing, routine, frame, window_start, hi, limit)


def _expand_elapsed(
    timing: Timing, frame: _Frame, lo: datetime, hi: datetime, limit: int | None
) -> list[Occurrence]:
    assert timing.interval_minutes is not None
    step = timedelta(minutes=timing.interval_minutes)
    origin = frame.origin
    start = max(0, math.ceil((frame.lower - origin) / step))  # first index in the frame
    stop = None if limit is None else start + limit
    k = max(start, math.ceil((lo - origin) / step))
    out: list[Occurrence] = []
    while stop is None or k < stop:
        at = origin + k * step
        if at >= hi:
            break
        out.append(_occurrence(at, _utc_key(at), frame))
        k += 1
    return out


def _expand_calendar(
    timing: Timing,
    routine: Routine,
    frame: _Frame,
    window_start: datetime,
    hi: datetime,
    limit: int | None,
) -> list[Occurrence]:
    slots = _day_slots(timing, routine)
    if not slots:
        return []
    min_m = min(s.minutes for s in slots)
    max_m = max(s.minutes for s in slots)
    spread_days = (max_m - min_m) // _DAY + 1
    # Dosing days whose slots can reach the range (slot minutes may leave the day).
    lo = frame.lower if limit is not None else max(frame.lower, window_start)
    first = lo.astimezone(frame.tz).date() - timedelta(days=max_m // _DAY + 2)
    last = hi.astimezone(frame.tz).date() + timedelta(days=-(min_m // _DAY) + 2)

    offsets = [(timedelta(minutes=s.minutes, seconds=s.seconds), s.suffix) for s in slots]
    candidates: list[tuple[datetime, int, str]] = []
    taken = 0
    for day in _dosing_days(timing, frame.origin_date, first, last):
        midnight = _as_dt(day)
        iso = day.isoformat()
        for order, (offset, suffix) in enumerate(offsets):
            at = resolve_local(midnight + offset, frame.tz)
            if _in_frame(at, frame) and at < hi:
                candidates.append((at, order, f"{iso}{suffix}"))
                taken += 1
        if limit is not None and taken >= limit + len(slots) * (spread_days + 2):
            break  # later dosing days cannot come before the first `limit` occurrences

    candidates.sort(key=lambda c: (c[0], c[1]))
    out: list[Occurrence] = []
    previous: datetime | None = None
    kept = 0
    for at, _order, key in candidates:
        if at == previous:
            continue  # a DST gap folded two slots onto one instant: one dose
        previous = at
        kept += 1
        if limit is not None and kept > limit:
            break
        if at >= window_start:
            out.append(_occurrence(at, key, frame))
    return out


# --------------------------------------------------------------------------- supply


def doses_per_day(timing: Timing, routine: Routine) -> float:
    """Average doses per day over one cycle of the schedule (for days of supply)."""
    if timing.kind == "once":
        return 0.0
    if timing.kind == "events":
        if not timing.events:
            return 0.0
        first = timing.events[0].astimezone(UTC).date()
        last = timing.events[-1].astimezone(UTC).date()
        return len(timing.events) / ((last - first).days + 1)
    if timing.kind in {"grid", "elapsed"}:
        assert timing.interval_minutes is not None
        return _DAY / timing.interval_minutes
    per_day = len(_day_slots(timing, routine))
    step = timing.step
    if timing.unit == "mo":
        return per_day / (step * _MONTH_DAYS)
    if timing.unit == "a":
        return per_day / (step * 12 * _MONTH_DAYS)
    if timing.day_of_week:
        weeks = 1 if timing.unit == "d" else step
        return per_day * len(timing.day_of_week) / (7 * weeks)
    cycle = step if timing.unit == "d" else 7 * step
    return per_day * len(timing.day_offsets) / cycle
