"""Timing validation (refusals name the field) and the expansion rules: codes, when + offset on
the routine, default times, bounds, count, calendar periods, events, supply. Pure: no database."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backend.schedule import (
    DEFAULT_ROUTINE,
    Occurrence,
    Routine,
    TimingError,
    doses_per_day,
    expand,
    parse_timing,
)

NY = "America/New_York"
TZ = ZoneInfo(NY)
DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}

# --------------------------------------------------------------------------- refusals

REFUSALS: list[tuple[str, Any, str]] = [
    ("unit s", {"repeat": {"frequency": 1, "period": 30, "periodUnit": "s"}}, "repeat.periodUnit"),
    (
        "unit min",
        {"repeat": {"frequency": 1, "period": 15, "periodUnit": "min"}},
        "repeat.periodUnit",
    ),
    (
        "unknown unit",
        {"repeat": {"frequency": 1, "period": 1, "periodUnit": "hr"}},
        "repeat.periodUnit",
    ),
    ("unknown when", {"repeat": {"when": ["BREAKFAST"]}}, "repeat.when[0]"),
    ("unknown 2nd when", {"repeat": {"when": ["ACM", "XYZ"]}}, "repeat.when[1]"),
    ("when lowercase", {"repeat": {"when": ["acm"]}}, "repeat.when[0]"),
    ("duplicate when", {"repeat": {"when": ["HS", "HS"]}}, "repeat.when[1]"),
    ("C and CM", {"repeat": {"when": ["C", "CM"]}}, "repeat.when[1]"),
    ("offset on timeOfDay", {"repeat": {"timeOfDay": ["08:00"], "offset": 30}}, "repeat.offset"),
    ("offset alone", {"repeat": {**DAILY, "offset": 30}}, "repeat.offset"),
    ("offset with CM", {"repeat": {"when": ["CM"], "offset": 10}}, "repeat.offset"),
    ("negative offset", {"repeat": {"when": ["ACM"], "offset": -5}}, "repeat.offset"),
    ("time 25:00", {"repeat": {"timeOfDay": ["25:00"]}}, "repeat.timeOfDay[0]"),
    ("time 7:5", {"repeat": {"timeOfDay": ["08:00", "7:5"]}}, "repeat.timeOfDay[1]"),
    ("time 08:60", {"repeat": {"timeOfDay": ["08:60:00"]}}, "repeat.timeOfDay[0]"),
    ("time number", {"repeat": {"timeOfDay": [800]}}, "repeat.timeOfDay[0]"),
    ("duplicate time", {"repeat": {"timeOfDay": ["08:00", "08:00:00"]}}, "repeat.timeOfDay[1]"),
    ("empty times", {"repeat": {"timeOfDay": []}}, "repeat.timeOfDay"),
    ("timeOfDay and when", {"repeat": {"timeOfDay": ["08:00"], "when": ["HS"]}}, "repeat.when"),
    (
        "frequency 0",
        {"repeat": {"frequency": 0, "period": 1, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    (
        "frequency text",
        {"repeat": {"frequency": "2", "period": 1, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    (
        "frequency 1.5",
        {"repeat": {"frequency": 1.5, "period": 1, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    (
        "frequency bool",
        {"repeat": {"frequency": True, "period": 1, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    ("period 0", {"repeat": {"frequency": 1, "period": 0, "periodUnit": "d"}}, "repeat.period"),
    (
        "period 1.5 d",
        {"repeat": {"frequency": 1, "period": 1.5, "periodUnit": "d"}},
        "repeat.period",
    ),
    ("no periodUnit", {"repeat": {"frequency": 2, "period": 1}}, "repeat.periodUnit"),
    ("no period", {"repeat": {"frequency": 2, "periodUnit": "d"}}, "repeat.period"),
    ("frequency alone", {"repeat": {"frequency": 2}}, "repeat.period"),
    ("periodMax < period", {"repeat": {**DAILY, "period": 2, "periodMax": 1}}, "repeat.periodMax"),
    (
        "frequencyMax < frequency",
        {"repeat": {**DAILY, "frequency": 3, "frequencyMax": 2}},
        "repeat.frequencyMax",
    ),
    ("countMax alone", {"repeat": {**DAILY, "countMax": 3}}, "repeat.countMax"),
    ("count 0", {"repeat": {**DAILY, "count": 0}}, "repeat.count"),
    ("duration no unit", {"repeat": {**DAILY, "duration": 30}}, "repeat.durationUnit"),
    (
        "durationMax alone",
        {"repeat": {**DAILY, "durationMax": 30, "durationUnit": "min"}},
        "repeat.durationMax",
    ),
    ("duration only", {"repeat": {"duration": 33.33, "durationUnit": "h"}}, "repeat.period"),
    ("count 3, no period", {"repeat": {"count": 3}}, "repeat.period"),
    ("bounds only", {"repeat": {"boundsPeriod": {"start": "2026-01-01"}}}, "repeat.period"),
    ("unknown repeat key", {"repeat": {**DAILY, "foo": 1}}, "repeat.foo"),
    ("unknown root key", {"repeat": DAILY, "foo": 1}, "foo"),
    (
        "modifierExtension",
        {"repeat": DAILY, "modifierExtension": [{"url": "x"}]},
        "modifierExtension",
    ),
    (
        "repeat modifierExtension",
        {"repeat": {**DAILY, "modifierExtension": []}},
        "repeat.modifierExtension",
    ),
    ("unknown _key", {"repeat": {**DAILY, "_foo": {}}}, "repeat._foo"),
    ("not an object", ["QD"], ""),
    ("null", None, ""),
    ("empty", {}, "repeat"),
    ("repeat not object", {"repeat": "daily"}, "repeat"),
    ("day monday", {"repeat": {"dayOfWeek": ["monday"]}}, "repeat.dayOfWeek[0]"),
    ("duplicate day", {"repeat": {"dayOfWeek": ["mon", "mon"]}}, "repeat.dayOfWeek[1]"),
    ("days per 2 d", {"repeat": {**DAILY, "period": 2, "dayOfWeek": ["mon"]}}, "repeat.dayOfWeek"),
    (
        "days monthly",
        {"repeat": {"period": 1, "periodUnit": "mo", "dayOfWeek": ["mon"]}},
        "repeat.dayOfWeek",
    ),
    (
        "days hourly",
        {"repeat": {"period": 4, "periodUnit": "h", "dayOfWeek": ["mon"]}},
        "repeat.dayOfWeek",
    ),
    ("when hourly", {"repeat": {"period": 4, "periodUnit": "h", "when": ["HS"]}}, "repeat.when"),
    (
        "2 times, hourly",
        {"repeat": {"period": 4, "periodUnit": "h", "timeOfDay": ["01:00", "02:00"]}},
        "repeat.timeOfDay",
    ),
    (
        "time on Q5H",
        {"repeat": {"period": 5, "periodUnit": "h", "timeOfDay": ["01:00"]}},
        "repeat.timeOfDay",
    ),
    (
        "every 30 min",
        {"repeat": {"frequency": 2, "period": 1, "periodUnit": "h"}},
        "repeat.frequency",
    ),
    (
        "every 0.5 h",
        {"repeat": {"frequency": 1, "period": 0.5, "periodUnit": "h"}},
        "repeat.period",
    ),
    (
        "2 per 3 days",
        {"repeat": {"frequency": 2, "period": 3, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    (
        "3 per 2 days",
        {"repeat": {"frequency": 3, "period": 2, "periodUnit": "d"}},
        "repeat.frequency",
    ),
    (
        "2 per month",
        {"repeat": {"frequency": 2, "period": 1, "periodUnit": "mo"}},
        "repeat.frequency",
    ),
    (
        "10 per week",
        {"repeat": {"frequency": 10, "period": 1, "periodUnit": "wk"}},
        "repeat.frequency",
    ),
    (
        "5 per wk on 2 days",
        {"repeat": {"frequency": 5, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon", "thu"]}},
        "repeat.frequency",
    ),
    ("25 a day", {"repeat": {"frequency": 25, "period": 1, "periodUnit": "d"}}, "repeat.frequency"),
    (
        "freq vs times",
        {"repeat": {**DAILY, "frequency": 2, "timeOfDay": ["08:00"]}},
        "repeat.frequency",
    ),
    ("freq vs C", {"repeat": {**DAILY, "when": ["C"]}}, "repeat.frequency"),
    (
        "freqMax vs times",
        {"repeat": {**DAILY, "frequencyMax": 2, "timeOfDay": ["08:00"]}},
        "repeat.frequencyMax",
    ),
    (
        "boundsRange",
        {"repeat": {**DAILY, "boundsRange": {"low": {"value": 1}}}},
        "repeat.boundsRange",
    ),
    (
        "two bounds",
        {"repeat": {**DAILY, "boundsPeriod": {}, "boundsDuration": {"value": 1, "code": "d"}}},
        "repeat.boundsPeriod",
    ),
    (
        "end before start",
        {"repeat": {**DAILY, "boundsPeriod": {"start": "2026-02-01", "end": "2026-01-01"}}},
        "repeat.boundsPeriod.end",
    ),
    (
        "start no offset",
        {"repeat": {**DAILY, "boundsPeriod": {"start": "2026-01-01T08:00:00"}}},
        "repeat.boundsPeriod.start",
    ),
    (
        "start bad date",
        {"repeat": {**DAILY, "boundsPeriod": {"start": "2026-02-30"}}},
        "repeat.boundsPeriod.start",
    ),
    (
        "bounds unknown key",
        {"repeat": {**DAILY, "boundsPeriod": {"begin": "2026-01-01"}}},
        "repeat.boundsPeriod.begin",
    ),
    (
        "boundsDuration unit",
        {"repeat": {**DAILY, "boundsDuration": {"value": 3, "code": "days"}}},
        "repeat.boundsDuration.code",
    ),
    (
        "boundsDuration value",
        {"repeat": {**DAILY, "boundsDuration": {"code": "d"}}},
        "repeat.boundsDuration.value",
    ),
    (
        "boundsDuration system",
        {"repeat": {**DAILY, "boundsDuration": {"value": 3, "code": "d", "system": "x"}}},
        "repeat.boundsDuration.system",
    ),
    (
        "boundsDuration comparator",
        {"repeat": {**DAILY, "boundsDuration": {"value": 3, "code": "d", "comparator": "<"}}},
        "repeat.boundsDuration.comparator",
    ),
    ("event and repeat", {"event": ["2026-01-01T08:00:00Z"], "repeat": DAILY}, "event"),
    ("event date only", {"event": ["2026-01-01"]}, "event[0]"),
    ("event no offset", {"event": ["2026-01-01T08:00:00Z", "2026-01-02T08:00:00"]}, "event[1]"),
    ("unknown code", {"code": {"text": "Q5X"}}, "code.text"),
    (
        "unknown coding",
        {"code": {"coding": [{"system": "http://example.org", "code": "BID"}]}},
        "code.coding",
    ),
    ("code no coding or text", {"code": {}}, "code"),
    ("coding unknown key", {"code": {"coding": [{"kode": "BID"}]}}, "code.coding[0].kode"),
]


@pytest.mark.parametrize(("name", "timing", "field"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_with_the_field(name: str, timing: Any, field: str) -> None:
    with pytest.raises(TimingError) as refused:
        parse_timing(timing)
    assert refused.value.field == field, refused.value.message
    assert refused.value.message
    assert isinstance(refused.value, ValueError)
    assert field in str(refused.value) or not field


def test_timing_error_carries_field_and_message() -> None:
    error = TimingError("repeat.when[0]", "unknown event code")
    assert (error.field, error.message) == ("repeat.when[0]", "unknown event code")
    assert str(error) == "repeat.when[0]: unknown event code"


# --------------------------------------------------------------------------- helpers


def _days(
    timing: dict[str, Any],
    first: date = date(2026, 11, 23),  # a Monday
    days: int = 7,
    *,
    anchor: datetime | None = None,
    routine: Routine = DEFAULT_ROUTINE,
) -> list[Occurrence]:
    start = datetime.combine(first, time(0), TZ)
    return expand(
        parse_timing(timing),
        routine,
        NY,
        start,
        start + timedelta(days=days),
        anchor=anchor or start,
    )


def _times(found: list[Occurrence]) -> list[str]:
    return sorted({o.local_time.strftime("%H:%M") for o in found})


def _dates(found: list[Occurrence]) -> list[str]:
    return sorted({o.local_date.isoformat() for o in found})


# --------------------------------------------------------------------------- round trip


def test_to_fhir_returns_the_json_as_given() -> None:
    given = {
        "id": "t1",
        "extension": [{"url": "http://example.org/x", "valueString": "y"}],
        "repeat": {
            "frequency": 2,
            "period": 1,
            "periodUnit": "d",
            "_periodUnit": {"id": "u"},
            "duration": 30,
            "durationUnit": "min",
            "boundsPeriod": {"start": "2026-11-01", "end": "2026-12"},
        },
        "code": {"coding": [{"system": "http://example.org/local", "code": "X"}], "text": "x"},
    }
    original = copy.deepcopy(given)
    timing = parse_timing(given)
    out = timing.to_fhir()
    assert out == original
    out["repeat"]["frequency"] = 9
    assert timing.to_fhir() == original
    assert timing.duration is not None and timing.duration_unit == "min"
    assert timing.bounds_end == date(2026, 12, 31)  # a partial end date covers the month


# --------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("code", "times", "per_day"),
    [
        ("QD", ["08:00"], 1.0),
        ("BID", ["08:00", "18:00"], 2.0),
        ("TID", ["08:00", "12:00", "18:00"], 3.0),
        ("QID", ["08:00", "12:00", "18:00", "22:00"], 4.0),
        ("AM", ["08:00"], 1.0),
        ("PM", ["15:00"], 1.0),
        ("BED", ["22:00"], 1.0),
        ("Q6H", ["01:00", "07:00", "13:00", "19:00"], 4.0),
        ("Q8H", ["07:00", "15:00", "23:00"], 3.0),
        ("Q4H", ["03:00", "07:00", "11:00", "15:00", "19:00", "23:00"], 6.0),
    ],
)
def test_daily_codes(code: str, times: list[str], per_day: float) -> None:
    coding = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": code}
        ]
    }
    for timing in ({"code": coding}, {"code": {"text": code.lower()}}):
        found = _days(timing)
        assert _times(found) == times
        assert len(found) == 7 * len(times)
        assert doses_per_day(parse_timing(timing), DEFAULT_ROUTINE) == per_day
        assert parse_timing(timing).code == code


def test_qod_wk_mo_follow_the_anchor() -> None:
    anchor = datetime(2026, 11, 24, 6, 0, tzinfo=TZ)  # a Tuesday
    qod = _days({"code": {"text": "QOD"}}, days=14, anchor=anchor)
    assert _dates(qod) == [
        f"2026-{d}" for d in ("11-24", "11-26", "11-28", "11-30", "12-02", "12-04", "12-06")
    ]
    wk = _days({"code": {"text": "WK"}}, days=21, anchor=anchor)
    assert _dates(wk) == ["2026-11-24", "2026-12-01", "2026-12-08"]
    mo = _days({"code": {"text": "MO"}}, days=70, anchor=anchor)
    assert _dates(mo) == ["2026-11-24", "2026-12-24", "2027-01-24"]
    assert doses_per_day(parse_timing({"code": {"text": "QOD"}}), DEFAULT_ROUTINE) == 0.5


def test_code_is_used_only_without_a_repeat_schedule_and_bounds_still_apply() -> None:
    bounded = {
        "code": {"text": "BID"},
        "repeat": {"boundsPeriod": {"start": "2026-11-24", "end": "2026-11-25"}},
    }
    found = _days(bounded)
    assert _dates(found) == ["2026-11-24", "2026-11-25"] and len(found) == 4
    # with a repeat schedule the code is only informational (FHIR: either may be used)
    both = {"code": {"text": "whatever"}, "repeat": {"timeOfDay": ["09:00"]}}
    assert _times(_days(both)) == ["09:00"]


# --------------------------------------------------------------------------- when + offset


@pytest.mark.parametrize(
    ("when", "offset", "expected"),
    [
        ("WAKE", None, "07:00"),
        ("WAKE", 15, "07:15"),
        ("MORN.early", None, "07:00"),
        ("MORN", None, "08:00"),
        ("MORN.late", None, "10:00"),
        ("NOON", None, "12:00"),
        ("AFT.early", None, "13:30"),
        ("AFT", None, "15:00"),
        ("AFT.late", None, "16:30"),
        ("EVE.early", None, "18:00"),
        ("EVE", None, "20:00"),
        ("EVE.late", None, "21:00"),
        ("NIGHT", None, "22:00"),
        ("HS", None, "22:00"),
        ("HS", 30, "21:30"),
        ("PHS", 60, "23:00"),
        ("CM", None, "08:00"),
        ("CD", None, "12:00"),
        ("CV", None, "18:00"),
        ("ACM", None, "07:30"),
        ("ACM", 10, "07:50"),
        ("ACD", 15, "11:45"),
        ("ACV", 0, "18:00"),
        ("PCM", None, "08:30"),
        ("PCD", 60, "13:00"),
        ("PCV", 5, "18:05"),
    ],
)
def test_when_on_the_default_routine(when: str, offset: int | None, expected: str) -> None:
    repeat: dict[str, Any] = {"when": [when]}
    if offset is not None:
        repeat["offset"] = offset
    found = _days({"repeat": repeat})
    assert _times(found) == [expected]
    assert len(found) == 7
    assert found[0].slot_key == f"2026-11-23#{when}"


@pytest.mark.parametrize(
    ("when", "times"),
    [
        ("C", ["08:00", "12:00", "18:00"]),
        ("AC", ["07:30", "11:30", "17:30"]),
        ("PC", ["08:30", "12:30", "18:30"]),
    ],
)
def test_generic_meal_codes_are_the_three_meals(when: str, times: list[str]) -> None:
    found = _days({"repeat": {"when": [when], "frequency": 3, "period": 1, "periodUnit": "d"}})
    assert _times(found) == times
    assert len(found) == 21


def test_when_follows_the_patients_routine_including_a_bed_after_midnight() -> None:
    owl = Routine(
        wake=time(10), breakfast=time(10, 30), lunch=time(14), dinner=time(20), bed=time(1, 30)
    )
    found = _days({"repeat": {"when": ["ACM", "HS"], "offset": 15}}, days=2, routine=owl)
    assert [
        (o.slot_key, o.local_date.isoformat(), o.local_time.strftime("%H:%M")) for o in found
    ] == [
        ("2026-11-23#ACM", "2026-11-23", "10:15"),
        ("2026-11-23#HS", "2026-11-24", "01:15"),  # the night after the 23rd
        ("2026-11-24#ACM", "2026-11-24", "10:15"),
    ]  # 11-24's HS (01:15 on the 25th) is after the window


def test_same_instant_from_two_when_codes_is_one_dose() -> None:
    found = _days({"repeat": {"when": ["MORN", "CM"]}}, days=1)
    assert [o.slot_key for o in found] == ["2026-11-23#MORN"]


# --------------------------------------------------------------------------- default times


@pytest.mark.parametrize(
    ("n", "times"),
    [
        (1, ["08:00"]),
        (2, ["08:00", "18:00"]),
        (3, ["08:00", "12:00", "18:00"]),
        (4, ["08:00", "12:00", "18:00", "22:00"]),
        (5, ["07:00", "10:45", "14:30", "18:15", "22:00"]),
        (6, ["07:00", "10:00", "13:00", "16:00", "19:00", "22:00"]),
    ],
)
def test_frequency_without_times_uses_the_routine(n: int, times: list[str]) -> None:
    found = _days({"repeat": {"frequency": n, "period": 1, "periodUnit": "d"}}, days=1)
    assert _times(found) == times
    assert [o.slot_key for o in found] == [f"2026-11-23#{i}of{n}" for i in range(1, n + 1)]


def test_frequency_max_is_taken_and_period_max_ignored() -> None:
    timing = {
        "repeat": {
            "frequency": 1,
            "frequencyMax": 2,
            "period": 1,
            "periodMax": 2,
            "periodUnit": "d",
        }
    }
    found = _days(timing, days=2)
    assert _times(found) == ["08:00", "18:00"] and len(found) == 4
    parsed = parse_timing(timing)
    assert (parsed.frequency, parsed.frequency_max) == (1, 2)


def test_14_per_week_is_twice_daily() -> None:
    found = _days({"repeat": {"frequency": 14, "period": 1, "periodUnit": "wk"}})
    assert len(found) == 14 and _times(found) == ["08:00", "18:00"]


# --------------------------------------------------------------------------- days


def test_times_per_week_spread_from_the_anchor_weekday() -> None:
    three = {"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}}
    assert _dates(_days(three, days=14)) == [
        "2026-11-23", "2026-11-25", "2026-11-27", "2026-11-30", "2026-12-02", "2026-12-04",
    ]  # fmt: skip
    two = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "wk"}}
    assert _dates(_days(two)) == ["2026-11-23", "2026-11-26"]
    assert doses_per_day(parse_timing(three), DEFAULT_ROUTINE) == pytest.approx(3 / 7)


def test_day_of_week_with_times_and_every_other_week() -> None:
    mwf = {"repeat": {"dayOfWeek": ["fri", "mon", "wed"], "timeOfDay": ["09:00", "21:00"]}}
    found = _days(mwf)
    assert _dates(found) == ["2026-11-23", "2026-11-25", "2026-11-27"] and len(found) == 6
    assert doses_per_day(parse_timing(mwf), DEFAULT_ROUTINE) == pytest.approx(6 / 7)
    fortnightly = {
        "repeat": {"frequency": 2, "period": 2, "periodUnit": "wk", "dayOfWeek": ["tue", "thu"]}
    }
    anchor = datetime(2026, 11, 26, tzinfo=TZ)  # Thursday: that week's Tuesday is before it
    found = _days(fortnightly, days=28, anchor=anchor)
    assert _dates(found) == ["2026-11-26", "2026-12-08", "2026-12-10"]


def test_monthly_on_the_31st_is_clamped_and_yearly_on_feb_29() -> None:
    anchor = datetime(2027, 1, 31, 7, tzinfo=TZ)
    monthly = _days({"code": {"text": "MO"}}, date(2027, 1, 1), days=120, anchor=anchor)
    assert _dates(monthly) == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    leap = datetime(2028, 2, 29, tzinfo=TZ)
    yearly = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "a", "timeOfDay": ["10:00"]}}
    found = _days(yearly, date(2028, 1, 1), days=366 * 5, anchor=leap)
    assert _dates(found) == ["2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"]


def test_every_48_hours_is_every_other_day_at_wake() -> None:
    found = _days({"repeat": {"frequency": 1, "period": 48, "periodUnit": "h"}}, days=6)
    assert _dates(found) == ["2026-11-23", "2026-11-25", "2026-11-27"]
    assert _times(found) == ["07:00"]


def test_hourly_grid_phase_from_time_of_day() -> None:
    found = _days(
        {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h", "timeOfDay": ["06:00"]}}, days=1
    )
    assert [o.slot_key for o in found] == [
        "2026-11-23T06:00",
        "2026-11-23T14:00",
        "2026-11-23T22:00",
    ]


def test_elapsed_interval_starts_at_the_anchor() -> None:
    anchor = datetime(2026, 11, 23, 9, 30, tzinfo=TZ)
    found = _days(
        {"repeat": {"frequency": 2, "period": 9, "periodUnit": "h"}}, days=1, anchor=anchor
    )
    assert _times(found) == ["09:30", "14:00", "18:30", "23:00"]
    assert found[0].slot_key == "2026-11-23T14:30Z"
    assert (
        doses_per_day(
            parse_timing({"repeat": {"frequency": 1, "period": 5, "periodUnit": "h"}}),
            DEFAULT_ROUTINE,
        )
        == 4.8
    )


# --------------------------------------------------------------------------- bounds, anchor, count


def test_nothing_before_the_anchor() -> None:
    anchor = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
    found = _days({"code": {"text": "TID"}}, days=1, anchor=anchor)
    assert _times(found) == ["12:00", "18:00"]


def test_bounds_period_is_inclusive_and_date_times_exact() -> None:
    dates = {"repeat": {**DAILY, "boundsPeriod": {"start": "2026-11-24", "end": "2026-11-26"}}}
    assert _dates(_days(dates)) == ["2026-11-24", "2026-11-25", "2026-11-26"]
    period = {"start": "2026-11-24T12:00:00-05:00", "end": "2026-11-26T08:00:00-05:00"}
    instants = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "boundsPeriod": period}}
    found = _days(instants)
    assert [(o.local_date.day, o.local_time.hour) for o in found] == [
        (24, 18),
        (25, 8),
        (25, 18),
        (26, 8),
    ]
    open_ended = {"repeat": {**DAILY, "boundsPeriod": {"end": "2026-11-24"}}}
    assert _dates(_days(open_ended)) == ["2026-11-23", "2026-11-24"]


def test_bounds_duration_from_the_anchor() -> None:
    three_days = {
        "repeat": {
            **DAILY,
            "boundsDuration": {
                "value": 3,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        }
    }
    assert _dates(_days(three_days)) == ["2026-11-23", "2026-11-24", "2026-11-25"]
    hours = {
        "repeat": {
            "frequency": 1,
            "period": 6,
            "periodUnit": "h",
            "boundsDuration": {"value": 36, "unit": "h"},
        }
    }
    found = _days(hours)
    assert len(found) == 6  # 01:00, 07:00, 13:00, 19:00 on the 23rd, 01:00 and 07:00 on the 24th


def test_count_counts_from_the_start_whatever_the_window() -> None:
    counted = {"repeat": {**DAILY, "count": 5}}
    anchor = datetime(2026, 11, 20, tzinfo=TZ)
    assert len(_days(counted, date(2026, 11, 20), days=30, anchor=anchor)) == 5
    later = _days(counted, date(2026, 11, 23), days=30, anchor=anchor)
    assert _dates(later) == ["2026-11-23", "2026-11-24"]  # the 4th and 5th doses
    assert _days(counted, date(2026, 12, 1), days=30, anchor=anchor) == []
    with_max = {"repeat": {**DAILY, "count": 2, "countMax": 4}}
    assert len(_days(with_max, days=30)) == 4
    elapsed = {"repeat": {"frequency": 1, "period": 5, "periodUnit": "h", "count": 3}}
    assert len(_days(elapsed, days=5)) == 3


def test_count_with_an_old_anchor_is_fast_and_exact() -> None:
    anchor = datetime(2016, 1, 1, tzinfo=TZ)
    hourly = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "h", "count": 30}}
    assert _days(hourly, anchor=anchor) == []
    full = _days(hourly, date(2016, 1, 1), days=3, anchor=anchor)
    assert len(full) == 30 and full[-1].local_time == time(5)


def test_single_dose() -> None:
    anchor = datetime(2026, 11, 23, 14, 15, tzinfo=TZ)
    found = _days({"repeat": {"count": 1}}, anchor=anchor)
    assert [(o.slot_key, o.local_time) for o in found] == [("once", time(14, 15))]
    starting = {"repeat": {"count": 1, "boundsPeriod": {"start": "2026-11-25"}}}
    found = _days(starting, anchor=anchor)
    assert [(o.local_date.day, o.local_time) for o in found] == [(25, time(7))]
    assert doses_per_day(parse_timing(starting), DEFAULT_ROUTINE) == 0.0


# --------------------------------------------------------------------------- events


def test_explicit_events() -> None:
    timing = {
        "event": ["2026-11-24T22:00:00+11:00", "2026-11-23T08:00:00-05:00", "2026-12-25T08:00:00Z"]
    }
    found = _days(timing)
    assert [
        (o.local_date.isoformat(), o.local_time.strftime("%H:%M"), o.slot_key) for o in found
    ] == [
        ("2026-11-23", "08:00", "2026-11-23T13:00Z"),
        ("2026-11-24", "06:00", "2026-11-24T11:00Z"),
    ]
    assert doses_per_day(parse_timing(timing), DEFAULT_ROUTINE) == pytest.approx(3 / 33)


# --------------------------------------------------------------------------- arguments


def test_argument_checks() -> None:
    timing = parse_timing({"code": {"text": "QD"}})
    now = datetime(2026, 11, 23, tzinfo=UTC)
    later = now + timedelta(days=1)
    with pytest.raises(ValueError, match="policy"):
        expand(timing, DEFAULT_ROUTINE, NY, now, later, anchor=now, policy="utc")
    with pytest.raises(ValueError, match="home_zone"):
        expand(timing, DEFAULT_ROUTINE, NY, now, later, anchor=now, policy="home")
    with pytest.raises(ValueError, match="zone"):
        expand(timing, DEFAULT_ROUTINE, "Mars/Olympus", now, later, anchor=now)
    with pytest.raises(ValueError, match="aware"):
        expand(timing, DEFAULT_ROUTINE, NY, now.replace(tzinfo=None), later, anchor=now)
    assert expand(timing, DEFAULT_ROUTINE, NY, later, now, anchor=now) == []
