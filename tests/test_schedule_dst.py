"""Daylight saving time (RFC 5545 section 3.3.5) and travel (local/home policy) in the schedule
expansion. Pure: no database.

2026 transitions used:
- America/New_York: spring forward Sun 8 Mar 02:00 -> 03:00; fall back Sun 1 Nov 02:00 -> 01:00.
- Europe/London: spring forward Sun 29 Mar 01:00 -> 02:00; fall back Sun 25 Oct 02:00 -> 01:00.
- Australia/Sydney (southern hemisphere): DST starts first Sunday of October, 4 Oct
  02:00 -> 03:00; ends first Sunday of April, 5 Apr 03:00 -> 02:00.
- Asia/Kolkata: +05:30 all year.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backend.schedule import DEFAULT_ROUTINE, Occurrence, expand, parse_timing

H = timedelta(hours=1)

# zone, transition day, kind, the wall time that is in the gap / repeated there
TRANSITIONS = [
    ("America/New_York", date(2026, 3, 8), "gap", "02:30"),
    ("America/New_York", date(2026, 11, 1), "repeat", "01:30"),
    ("Europe/London", date(2026, 3, 29), "gap", "01:30"),
    ("Europe/London", date(2026, 10, 25), "repeat", "01:30"),
    ("Australia/Sydney", date(2026, 10, 4), "gap", "02:30"),
    ("Australia/Sydney", date(2026, 4, 5), "repeat", "02:30"),
]
IDS = [f"{z.split('/')[1]}-{d.isoformat()}-{k}" for z, d, k, _ in TRANSITIONS]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _expand(
    timing: dict[str, Any],
    zone: str,
    first_day: date,
    days: int = 3,
    *,
    policy: str = "local",
    home_zone: str | None = None,
) -> list[Occurrence]:
    window_zone = ZoneInfo(home_zone if policy == "home" and home_zone else zone)
    start = datetime.combine(first_day, time(0), window_zone)
    return expand(
        parse_timing(timing),
        DEFAULT_ROUTINE,
        zone,
        start,
        start + timedelta(days=days),
        anchor=start - timedelta(days=30),
        policy=policy,
        home_zone=home_zone,
    )


def _well_formed(found: list[Occurrence]) -> None:
    instants = [o.at for o in found]
    assert instants == sorted(instants)
    assert len(set(instants)) == len(instants), "a duplicate dose"
    assert len({o.slot_key for o in found}) == len(found)
    for o in found:
        local = o.at.astimezone(ZoneInfo(o.zone))
        assert (local.date(), local.time()) == (o.local_date, o.local_time)
        assert o.at.tzinfo is UTC


def _per_day(found: list[Occurrence]) -> Counter[date]:
    return Counter(o.local_date for o in found)


# --------------------------------------------------------------------------- daily at a time


# The instant each transition day's dose has (RFC 5545: gap -> offset before the gap; repeated
# time -> the first occurrence).
DAILY_EXPECTED = {
    ("America/New_York", date(2026, 3, 8), "02:30"): (_utc(2026, 3, 8, 7, 30), time(3, 30)),
    ("America/New_York", date(2026, 11, 1), "01:30"): (_utc(2026, 11, 1, 5, 30), time(1, 30)),
    ("Europe/London", date(2026, 3, 29), "01:30"): (_utc(2026, 3, 29, 1, 30), time(2, 30)),
    ("Europe/London", date(2026, 10, 25), "01:30"): (_utc(2026, 10, 25, 0, 30), time(1, 30)),
    ("Australia/Sydney", date(2026, 10, 4), "02:30"): (_utc(2026, 10, 3, 16, 30), time(3, 30)),
    ("Australia/Sydney", date(2026, 4, 5), "02:30"): (_utc(2026, 4, 4, 15, 30), time(2, 30)),
}


@pytest.mark.parametrize(("zone", "day", "kind", "wall"), TRANSITIONS, ids=IDS)
def test_daily_dose_at_a_gap_or_repeated_time(zone: str, day: date, kind: str, wall: str) -> None:
    found = _expand({"repeat": {"timeOfDay": [wall]}}, zone, day - timedelta(days=1))
    _well_formed(found)
    assert [o.local_date for o in found] == [day - timedelta(days=1), day, day + timedelta(days=1)]
    assert all(o.slot_key.endswith(f"T{wall}") for o in found)  # the nominal slot is kept
    on_day = found[1]
    at, local = DAILY_EXPECTED[(zone, day, wall)]
    assert (on_day.at, on_day.local_time) == (at, local)
    if kind == "gap":
        assert on_day.local_time.hour == int(wall[:2]) + 1  # 02:30 fires at 03:30 new time
    else:
        # fires once, at the first occurrence: one hour before the same wall time's second one
        tz = ZoneInfo(zone)
        second = datetime.combine(day, time.fromisoformat(wall), tz).replace(fold=1)
        assert on_day.at == second.astimezone(UTC) - H
    assert found[0].local_time == found[2].local_time == time.fromisoformat(wall)


@pytest.mark.parametrize(("zone", "day", "kind", "wall"), TRANSITIONS, ids=IDS)
def test_daily_0230_every_day_around_each_transition(
    zone: str, day: date, kind: str, wall: str
) -> None:
    found = _expand({"repeat": {"timeOfDay": ["02:30"]}}, zone, day - timedelta(days=3), days=7)
    _well_formed(found)
    assert set(_per_day(found).values()) == {1}
    assert len(found) == 7
    shifted = [o for o in found if o.local_time != time(2, 30)]
    if zone != "Europe/London" and kind == "gap":
        assert [(o.local_date, o.local_time) for o in shifted] == [(day, time(3, 30))]
    else:
        assert shifted == []


# --------------------------------------------------------------------------- BID


@pytest.mark.parametrize(("zone", "day", "kind", "wall"), TRANSITIONS, ids=IDS)
def test_bid_keeps_its_wall_clock_times(zone: str, day: date, kind: str, wall: str) -> None:
    found = _expand({"code": {"text": "BID"}}, zone, day - timedelta(days=2), days=5)
    _well_formed(found)
    assert set(_per_day(found).values()) == {2}
    assert {o.local_time for o in found} == {time(8), time(18)}
    offsets = [o.at.astimezone(ZoneInfo(zone)).utcoffset() for o in found]
    before, after = offsets[0], offsets[-1]
    assert before is not None and after is not None
    assert (after - before) == (H if kind == "gap" else -H)


# --------------------------------------------------------------------------- Q4H and Q1H


def _gaps(found: list[Occurrence]) -> Counter[timedelta]:
    return Counter(b.at - a.at for a, b in pairwise(found))


@pytest.mark.parametrize("phase", [None, "02:00", "01:00"])
@pytest.mark.parametrize(("zone", "day", "kind", "wall"), TRANSITIONS, ids=IDS)
def test_q4h_across_transitions(
    zone: str, day: date, kind: str, wall: str, phase: str | None
) -> None:
    repeat: dict[str, Any] = {"frequency": 1, "period": 4, "periodUnit": "h"}
    if phase:
        repeat["timeOfDay"] = [phase]
    found = _expand({"repeat": repeat}, zone, day - timedelta(days=2), days=5)
    _well_formed(found)
    assert set(_per_day(found).values()) == {6}, "every local day has its six doses"
    # elapsed intervals are 4 h except one, an hour shorter (spring) or longer (autumn)
    gaps = _gaps(found)
    odd = 3 * H if kind == "gap" else 5 * H
    assert gaps == Counter({4 * H: len(found) - 2, odd: 1})


@pytest.mark.parametrize(("zone", "day", "kind", "wall"), TRANSITIONS, ids=IDS)
def test_q1h_is_never_duplicated_or_missing(zone: str, day: date, kind: str, wall: str) -> None:
    found = _expand({"code": {"text": "Q1H"}}, zone, day - timedelta(days=1))
    _well_formed(found)
    per_day = _per_day(found)
    assert per_day[day - timedelta(days=1)] == per_day[day + timedelta(days=1)] == 24
    gaps = _gaps(found)
    if kind == "gap":
        assert per_day[day] == 23  # a 23-hour day: every hour, the skipped hour merged
        assert set(gaps) == {H}
    else:
        assert per_day[day] == 24  # a 25-hour day: the repeated hour fires once
        assert gaps == Counter({H: len(found) - 2, 2 * H: 1})


def test_q4h_wall_clock_times_in_new_york() -> None:
    found = _expand({"code": {"text": "Q4H"}}, "America/New_York", date(2026, 3, 8), days=1)
    assert [o.local_time.strftime("%H:%M") for o in found] == [
        "03:00", "07:00", "11:00", "15:00", "19:00", "23:00",
    ]  # fmt: skip
    assert [o.at.hour for o in found] == [7, 11, 15, 19, 23, 3]


def test_elapsed_hourly_interval_ignores_dst() -> None:
    """Q5H does not divide a day: fixed 5-hour steps in UTC across the transition."""
    found = _expand(
        {"repeat": {"frequency": 1, "period": 5, "periodUnit": "h"}},
        "America/New_York",
        date(2026, 3, 7),
    )
    _well_formed(found)
    assert set(_gaps(found)) == {5 * H}
    assert all(o.slot_key.endswith("Z") for o in found)


# --------------------------------------------------------------------------- Kolkata


def test_kolkata_half_hour_offset() -> None:
    found = _expand({"repeat": {"timeOfDay": ["02:30", "08:00"]}}, "Asia/Kolkata", date(2026, 3, 7))
    _well_formed(found)
    assert [(o.local_date.day, o.local_time, o.at) for o in found[:2]] == [
        (7, time(2, 30), _utc(2026, 3, 6, 21, 0)),
        (7, time(8, 0), _utc(2026, 3, 7, 2, 30)),
    ]
    assert set(_per_day(found).values()) == {2}
    q4h = _expand({"code": {"text": "Q4H"}}, "Asia/Kolkata", date(2026, 3, 7))
    assert set(_gaps(q4h)) == {4 * H}
    assert {o.at.minute for o in q4h} == {30}


# --------------------------------------------------------------------------- travel


AT_0800 = {"repeat": {"timeOfDay": ["08:00"]}}


def test_travel_local_policy_follows_the_wall_clock() -> None:
    """Home New York, now in London: the 08:00 dose is at 08:00 London time."""
    found = _expand(
        AT_0800, "Europe/London", date(2026, 11, 25), home_zone="America/New_York", days=1
    )
    assert [(o.local_time, o.at, o.zone) for o in found] == [
        (time(8), _utc(2026, 11, 25, 8), "Europe/London")
    ]
    assert found[0].slot_key == "2026-11-25T08:00"


def test_travel_home_policy_keeps_home_instants() -> None:
    """A time-critical medicine stays at 08:00 New York = 13:00 UTC while in London."""
    found = _expand(
        AT_0800,
        "Europe/London",
        date(2026, 11, 25),
        policy="home",
        home_zone="America/New_York",
        days=1,
    )
    assert [(o.local_date, o.local_time, o.at, o.zone) for o in found] == [
        (date(2026, 11, 25), time(8), _utc(2026, 11, 25, 13), "America/New_York")
    ]
    assert found[0].slot_key == "2026-11-25T08:00"
    assert found[0].at.astimezone(ZoneInfo("Europe/London")).time() == time(13)


def test_home_policy_follows_home_dst_not_the_visited_zone() -> None:
    """Between the US (8 Mar) and UK (29 Mar) transitions New York is UTC-4, London UTC+0."""
    found = _expand(
        AT_0800,
        "Europe/London",
        date(2026, 3, 7),
        policy="home",
        home_zone="America/New_York",
        days=3,
    )
    assert [o.at for o in found] == [
        _utc(2026, 3, 7, 13),
        _utc(2026, 3, 8, 12),
        _utc(2026, 3, 9, 12),
    ]


def test_zone_change_moves_upcoming_doses_but_keeps_slot_keys() -> None:
    timing = parse_timing({"code": {"text": "BID"}})
    window = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    ny = expand(timing, DEFAULT_ROUTINE, "America/New_York", *window, anchor=anchor)
    london = expand(timing, DEFAULT_ROUTINE, "Europe/London", *window, anchor=anchor)
    assert {o.local_time for o in ny} == {o.local_time for o in london} == {time(8), time(18)}
    assert {o.slot_key for o in ny} & {o.slot_key for o in london}
    assert {o.at for o in ny}.isdisjoint({o.at for o in london})
