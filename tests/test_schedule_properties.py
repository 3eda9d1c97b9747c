"""Property test of the schedule expansion (hypothesis, bounded and fast; pure, no database).

For random valid timings (frequency/period/periodUnit, timeOfDay, dayOfWeek, when + offset on a
random routine, hourly grids and elapsed intervals, boundsPeriod/boundsDuration, count), zones
with and without DST and random windows, the occurrences are sorted by instant with no two at
the same instant, unique by slot key, inside the window, the anchor and the bounds, at most
``count``, consistent in their local fields, additive over split windows, and present on
every local day the timing says (e.g. daily with timeOfDay: one per distinct instant of those
times that day — len(timeOfDay) except where a spring-forward gap folds two onto one instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backend.schedule import (
    Occurrence,
    Routine,
    Timing,
    default_times,
    expand,
    parse_timing,
    when_minutes,
)

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SPECIFIC_WHEN = [
    "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE",
    "EVE.early", "EVE.late", "NIGHT", "PHS", "WAKE", "HS", "ACM", "ACD", "ACV", "PCM", "PCD",
    "PCV", "CM", "CD", "CV",
]  # fmt: skip
AT_MEAL = {"CM", "CD", "CV"}
PROPERTY_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Case:
    shape: str  # times | when | freq | grid | every_n_days | weekly | monthly | elapsed
    timing: dict[str, Any]
    routine: Routine
    zone: str
    anchor: datetime
    window_start: datetime
    window_end: datetime
    split: float


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# Wall-clock minutes, with the DST hours (01:00-03:59) drawn often.
wall_minutes = st.one_of(
    st.integers(0, 1439), st.integers(60, 239), st.sampled_from([90, 150, 120, 60, 180])
)


@st.composite
def routines(draw: st.DrawFn) -> Routine:
    wake = draw(st.integers(5 * 60, 8 * 60))
    breakfast = wake + draw(st.integers(0, 120))
    lunch = max(breakfast + 60, draw(st.integers(11 * 60, 14 * 60)))
    dinner = lunch + draw(st.integers(180, 420))
    bed = min(22 * 60, max(dinner + 30, draw(st.integers(20 * 60, 22 * 60))))
    dinner = min(dinner, bed)

    def t(m: int) -> time:
        return time(m // 60, m % 60)

    return Routine(t(wake), t(breakfast), t(lunch), t(dinner), t(bed))


@st.composite
def schedules(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    shape = draw(
        st.sampled_from(
            ["times", "when", "freq", "grid", "every_n_days", "weekly", "monthly", "elapsed"]
        )
    )
    repeat: dict[str, Any] = {}
    days = draw(st.none() | st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if shape == "times":
        minutes = draw(st.lists(wall_minutes, min_size=1, max_size=6, unique=True))
        repeat["timeOfDay"] = [_hhmm(m) for m in minutes]
        if draw(st.booleans()):
            repeat.update(frequency=len(minutes), period=1, periodUnit="d")
        if days:
            repeat["dayOfWeek"] = days
    elif shape == "when":
        codes = draw(st.lists(st.sampled_from(SPECIFIC_WHEN), min_size=1, max_size=5, unique=True))
        repeat["when"] = codes
        if not AT_MEAL & set(codes) and draw(st.booleans()):
            repeat["offset"] = draw(st.integers(0, 90))
        if days:
            repeat["dayOfWeek"] = days
    elif shape == "freq":
        repeat.update(frequency=draw(st.integers(1, 6)), period=1, periodUnit="d")
        if days:
            repeat["dayOfWeek"] = days
    elif shape == "grid":
        repeat.update(
            frequency=1, period=draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24])), periodUnit="h"
        )
        if draw(st.booleans()):
            repeat["timeOfDay"] = [_hhmm(draw(wall_minutes))]
    elif shape == "every_n_days":
        repeat.update(frequency=1, period=draw(st.integers(2, 4)), periodUnit="d")
        if draw(st.booleans()):
            repeat["timeOfDay"] = [_hhmm(draw(wall_minutes))]
    elif shape == "weekly":
        weeks = draw(st.integers(1, 2))
        repeat.update(period=weeks, periodUnit="wk")
        if days:
            repeat.update(dayOfWeek=days, frequency=len(days))
        else:
            repeat["frequency"] = draw(st.integers(1, 7))
    elif shape == "monthly":
        repeat.update(frequency=1, period=draw(st.integers(1, 2)), periodUnit="mo")
    else:
        repeat.update(frequency=1, period=draw(st.sampled_from([5, 7, 9, 10, 16])), periodUnit="h")
    return shape, repeat


@st.composite
def cases(draw: st.DrawFn) -> Case:
    shape, repeat = draw(schedules())
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    # anchors around the 2026 transitions are the interesting ones
    base = draw(
        st.sampled_from(
            [date(2026, 3, 1), date(2026, 3, 22), date(2026, 3, 30), date(2026, 10, 1),
             date(2026, 10, 20), date(2026, 10, 28), date(2026, 6, 15)]
        )
    )  # fmt: skip
    anchor_local = datetime.combine(
        base + timedelta(days=draw(st.integers(0, 10))), time(draw(st.integers(0, 23)))
    )
    anchor = anchor_local.replace(tzinfo=tz).astimezone(UTC)
    bounds = draw(st.sampled_from(["none", "period", "duration", "count"]))
    anchor_day = anchor_local.date()
    if bounds == "period":
        period: dict[str, str] = {}
        if draw(st.booleans()):
            start = anchor_day + timedelta(days=draw(st.integers(-3, 8)))
            period["start"] = start.isoformat()
        else:
            start = anchor_day - timedelta(days=3)
        if draw(st.booleans()):
            period["end"] = (start + timedelta(days=draw(st.integers(0, 15)))).isoformat()
        repeat["boundsPeriod"] = period
    elif bounds == "duration":
        repeat["boundsDuration"] = {
            "value": draw(st.integers(1, 15)),
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    elif bounds == "count":
        repeat["count"] = draw(st.integers(1, 30))
    window_start = anchor + timedelta(
        hours=draw(st.one_of(st.integers(-48, 72), st.integers(-48, 24 * 20)))
    )
    window_end = window_start + timedelta(
        hours=draw(st.one_of(st.integers(24 * 3, 24 * 18), st.integers(1, 24 * 18)))
    )
    return Case(
        shape=shape,
        timing={"repeat": repeat},
        routine=draw(routines()),
        zone=zone,
        anchor=anchor,
        window_start=window_start,
        window_end=window_end,
        split=draw(st.floats(0, 1)),
    )


def _run(case: Case, timing: Timing, start: datetime, end: datetime) -> list[Occurrence]:
    return expand(timing, case.routine, case.zone, start, end, anchor=case.anchor)


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0)).replace(tzinfo=tz).astimezone(UTC)


def _range(case: Case, timing: Timing) -> tuple[datetime, datetime]:
    """Where occurrences may be: the window cut by the anchor and the bounds (independently of
    the implementation: FHIR dates are local days, boundsDuration runs from the anchor)."""
    tz = ZoneInfo(case.zone)
    lo = max(case.window_start, case.anchor)
    hi = case.window_end
    bp = case.timing["repeat"].get("boundsPeriod", {})
    if "start" in bp:
        lo = max(lo, _local_midnight(date.fromisoformat(bp["start"]), tz))
    if "end" in bp:
        hi = min(hi, _local_midnight(date.fromisoformat(bp["end"]) + timedelta(days=1), tz))
    bd = case.timing["repeat"].get("boundsDuration")
    if bd:
        wall = case.anchor.astimezone(tz).replace(tzinfo=None) + relativedelta(days=bd["value"])
        hi = min(hi, wall.replace(tzinfo=tz).astimezone(UTC))
    return lo, hi


def _expected_per_day(case: Case, timing: Timing, day: date) -> int | None:
    """How many doses the local ``day`` must have, or None when the shape has no daily rule."""
    tz = ZoneInfo(case.zone)
    repeat = case.timing["repeat"]
    if (
        "dayOfWeek" in repeat
        and case.shape != "weekly"
        and DAYS[day.weekday()] not in repeat["dayOfWeek"]
    ):
        return 0
    if case.shape == "times":
        minutes = [int(t[:2]) * 60 + int(t[3:]) for t in repeat["timeOfDay"]]
    elif case.shape == "when":
        minutes = [when_minutes(c, repeat.get("offset"), case.routine) for c in repeat["when"]]
    elif case.shape == "freq":
        minutes = default_times(repeat["frequency"], case.routine)
    elif case.shape == "grid":
        step = repeat["period"] * 60
        phase = repeat.get("timeOfDay", [None])[0]
        first = (
            int(phase[:2]) * 60 + int(phase[3:])
            if phase
            else case.routine.wake.hour * 60 + case.routine.wake.minute
        )
        minutes = [(first + k * step) % 1440 for k in range(1440 // step)]
    elif case.shape == "every_n_days":
        bp = repeat.get("boundsPeriod", {})
        origin = (
            date.fromisoformat(bp["start"]) if "start" in bp else case.anchor.astimezone(tz).date()
        )
        if (day - origin).days % repeat["period"]:
            return 0
        return 1
    else:
        return None
    wall = [datetime.combine(day, time(0)) + timedelta(minutes=m) for m in minutes]
    assert all(w.date() == day for w in wall)  # the generators keep these inside the day
    return len({w.replace(tzinfo=tz).astimezone(UTC) for w in wall})


@PROPERTY_SETTINGS
@given(cases())
def test_expansion_properties(case: Case) -> None:
    timing = parse_timing(case.timing)
    found = _run(case, timing, case.window_start, case.window_end)
    tz = ZoneInfo(case.zone)

    event(f"{case.shape}, {'some' if found else 'no'} occurrences")

    # sorted by instant, never two doses at one instant, unique slots
    instants = [o.at for o in found]
    assert instants == sorted(instants)
    assert len(set(instants)) == len(instants)
    assert len({o.slot_key for o in found}) == len(found)

    # inside the window, after the anchor, inside the bounds
    lo, hi = _range(case, timing)
    assert all(lo <= at < hi for at in instants), (lo, hi, instants[:3], instants[-3:])

    # local fields are the instant in the zone
    for o in found:
        local = o.at.astimezone(tz)
        assert (o.local_date, o.local_time, o.zone) == (local.date(), local.time(), case.zone)
        assert o.at.utcoffset() == timedelta(0)

    # at most `count`, counted from the start whatever the window
    count = case.timing["repeat"].get("count")
    if count is not None:
        assert len(found) <= count
        everything = _run(case, timing, case.anchor - timedelta(days=1), case.window_end)
        assert len(everything) <= count
        assert {(o.slot_key, o.at) for o in found} <= {(o.slot_key, o.at) for o in everything}

    # additive: two halves of the window give the same occurrences
    middle = case.window_start + (case.window_end - case.window_start) * case.split
    halves = _run(case, timing, case.window_start, middle) + _run(
        case, timing, middle, case.window_end
    )
    assert halves == found

    # present on every local day the timing says (days wholly inside the range)
    if count is None:
        checked = 0
        per_day: dict[date, int] = {}
        for o in found:
            per_day[o.local_date] = per_day.get(o.local_date, 0) + 1
        day = lo.astimezone(tz).date()
        while _local_midnight(day, tz) < hi:
            if (
                _local_midnight(day, tz) >= lo
                and _local_midnight(day + timedelta(days=1), tz) <= hi
            ):
                expected = _expected_per_day(case, timing, day)
                if expected is not None:
                    assert per_day.get(day, 0) == expected, (day, case.shape)
                    checked += 1
            day += timedelta(days=1)
        event(f"whole local days checked: {'some' if checked else 'none'}")

    # elapsed intervals are exact
    if case.shape == "elapsed":
        step = timedelta(hours=case.timing["repeat"]["period"])
        assert all(b - a == step for a, b in pairwise(instants))
