"""Every ``dosageInstruction.timing`` of the HL7 FHIR R4 MedicationRequest examples, and of the
Synthea bundles, through ``parse_timing`` + ``expand`` for two weeks.

Each HL7 timing is either expanded to the occurrences written in the table below or refused
with a ``TimingError`` naming the field. Where the example's free text disagrees with its own
structured timing (a known sloppiness of these examples), the structured timing wins and the
note says so. Pure: no database.

Window: 14 days from local midnight of ``boundsPeriod.start`` if present, else of
``authoredOn``, in America/New_York, default routine (wake 07:00, breakfast 08:00, lunch 12:00,
dinner 18:00, bed 22:00); the anchor is ``authoredOn`` at local midnight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backend.schedule import DEFAULT_ROUTINE, Occurrence, TimingError, expand, parse_timing
from tests.shared_data import FHIR, absent

HL7 = FHIR / "hl7-r4-examples"
SYNTHEA = FHIR / "synthea"
ZONE = "America/New_York"
TZ = ZoneInfo(ZONE)

pytestmark = pytest.mark.skipif(absent(HL7) is not None, reason=absent(HL7) or "")


@dataclass(frozen=True)
class Doses:
    count: int
    times: tuple[str, ...]  # the distinct local times HH:MM
    dates: tuple[str, ...] | int  # the local dates, or how many distinct days
    note: str = ""


@dataclass(frozen=True)
class Refused:
    field: str
    note: str = ""


def _t(*times: str) -> tuple[str, ...]:
    return times


ONE = _t("08:00")
BID = _t("08:00", "18:00")
TID = _t("08:00", "12:00", "18:00")
QID = _t("08:00", "12:00", "18:00", "22:00")
Q4H = _t("03:00", "07:00", "11:00", "15:00", "19:00", "23:00")
Q6H = _t("01:00", "07:00", "13:00", "19:00")
HOURLY = tuple(f"{h:02d}:00" for h in range(24))
THU_SAT_MON = ("2015-01-15", "2015-01-17", "2015-01-19", "2015-01-22", "2015-01-24", "2015-01-26")

EXPECTED: dict[tuple[str, int], Doses | Refused] = {
    ("medicationrequest0301", 0): Doses(84, Q4H, 14, "every 4-6 h PRN: period 4 h"),
    ("medicationrequest0302", 0): Doses(14, ONE, 14, "text 'two at once', timing 1/d: timing wins"),
    ("medicationrequest0302", 1): Doses(56, QID, 14, "text 'daily for 4 days', timing 4/d"),
    ("medicationrequest0303", 0): Doses(5, ONE, 5, "daily, bounds Jan 16-20 inclusive"),
    ("medicationrequest0303", 1): Doses(8, ONE, 8, "daily, bounds Jan 23-30"),
    ("medicationrequest0303", 2): Doses(7, ONE, 7, "daily, bounds Jan 31-Feb 6"),
    ("medicationrequest0304", 0): Doses(56, QID, 14, "four times daily"),
    ("medicationrequest0305", 0): Doses(24, Q6H, 6, "q6h (periodMax 12 ignored), Jan 15-20"),
    ("medicationrequest0306", 0): Doses(14, ONE, 14, "daily"),
    ("medicationrequest0307", 0): Doses(84, Q4H, 14, "every four hours PRN"),
    ("medicationrequest0308", 0): Doses(84, Q4H, 14, "every four hours PRN"),
    ("medicationrequest0309", 0): Doses(
        7,
        ONE,
        tuple(f"2016-{d}" for d in ("01-22", "01-24", "01-26", "01-28", "01-30", "02-01", "02-03")),
        "text 'twice daily', timing 1 per 2 d: every other day within the bounds",
    ),
    ("medicationrequest0310", 0): Doses(14, ONE, 14, "once daily (text: at bedtime, PRN)"),
    ("medicationrequest0312", 0): Doses(42, TID, 14, "three times daily"),
    ("medicationrequest0313", 0): Doses(14, ONE, 14, "daily (text: for 5 days, no bounds)"),
    ("medicationrequest0314", 0): Doses(14, ONE, 14, "daily"),
    ("medicationrequest0315", 0): Refused("repeat.periodUnit", "every 15 minutes"),
    ("medicationrequest0316", 0): Doses(1, ONE, ("2015-01-15",), "every 3 weeks, count 16"),
    ("medicationrequest0317", 0): Doses(6, ONE, THU_SAT_MON, "3 per week on alternate days"),
    ("medicationrequest0317", 1): Doses(6, ONE, THU_SAT_MON, "3 per week on alternate days"),
    ("medicationrequest0317", 2): Doses(6, ONE, THU_SAT_MON, "3 per week on alternate days"),
    ("medicationrequest0318", 0): Doses(56, Q6H, 14, "q6h"),
    ("medicationrequest0319", 0): Doses(56, Q6H, 14, "every 6 hours"),
    ("medicationrequest0320", 0): Doses(42, TID, 14, "three times daily"),
    ("medicationrequest0321", 0): Doses(14, _t("07:50"), 14, "10 min before breakfast"),
    ("medicationrequest0321", 1): Doses(14, ONE, 14, "text 'before lunch'; timing has no when"),
    ("medicationrequest0321", 2): Doses(14, ONE, 14, "text 'before dinner'; timing has no when"),
    ("medicationrequest0322", 0): Doses(336, HOURLY, 14, "1 per 1 h (an infusion rate)"),
    ("medicationrequest0323", 0): Refused("event", "event + repeat is ambiguous"),
    ("medicationrequest0324", 0): Doses(28, BID, 14, "twice daily PRN"),
    ("medicationrequest0325", 0): Doses(56, QID, 14, "four times daily"),
    ("medicationrequest0326", 0): Doses(28, BID, 14, "twice daily"),
    ("medicationrequest0327", 0): Doses(6, ONE, THU_SAT_MON, "three times per week"),
    ("medicationrequest0328", 0): Doses(28, BID, 14, "twice daily"),
    ("medicationrequest0329", 0): Doses(28, BID, 14, "twice daily"),
    ("medicationrequest0330", 0): Doses(28, BID, 14, "twice daily"),
    ("medicationrequest0331", 0): Doses(14, ONE, 14, "once daily"),
    ("medicationrequest0332", 0): Doses(1, _t("00:00"), ("2015-01-15",), "single dose at start"),
    ("medicationrequest0333", 0): Doses(14, ONE, 14, "in the morning: MORN = breakfast"),
    ("medicationrequest0334", 0): Doses(8, QID, ("2015-01-19", "2015-01-26"), "4/d on Mondays"),
    ("medicationrequest0335", 0): Doses(14, _t("09:00"), 14, "at 9am daily"),
    ("medicationrequest0336", 0): Refused("repeat.period", "duration only: an infusion"),
    ("medicationrequest0337", 0): Refused("repeat.period", "duration only: an infusion"),
    ("medicationrequest0338", 0): Refused("repeat.period", "duration only: an infusion"),
    ("medicationrequest0339", 0): Doses(3, ONE, 3, "daily, bounds Jan 16-18"),
    ("medicationrequest0339", 1): Doses(3, ONE, 3, "daily, bounds Jan 16-18"),
    ("medicationrequestexample1", 0): Doses(14, ONE, 14, "code QD"),
}


def _timings(path: Path) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    resource = json.loads(path.read_text())
    return [
        (i, resource, dosage["timing"])
        for i, dosage in enumerate(resource.get("dosageInstruction", []))
        if "timing" in dosage
    ]


def _all_hl7() -> list[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    if not HL7.is_dir():
        return []
    return [
        (path.stem, i, resource, timing)
        for path in sorted(HL7.glob("medicationrequest*.json"))
        for i, resource, timing in _timings(path)
    ]


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), TZ)


def _two_weeks(resource: dict[str, Any], timing: dict[str, Any]) -> list[Occurrence]:
    parsed = parse_timing(timing)
    authored = date.fromisoformat(resource["authoredOn"][:10])
    start = parsed.bounds_start
    first = start if isinstance(start, date) and not isinstance(start, datetime) else authored
    window_start = _midnight(first)
    return expand(
        parsed,
        DEFAULT_ROUTINE,
        ZONE,
        window_start,
        window_start + timedelta(days=14),
        anchor=_midnight(authored),
    )


def test_the_table_covers_every_timing_in_the_examples() -> None:
    found = {(stem, i) for stem, i, _r, _t in _all_hl7()}
    assert found == set(EXPECTED)
    assert len(found) == 47  # 40 MedicationRequests; example2 has no timing


@pytest.mark.parametrize(
    ("stem", "index", "resource", "timing"),
    _all_hl7(),
    ids=[f"{stem}[{i}]" for stem, i, _r, _t in _all_hl7()],
)
def test_hl7_example_timing(
    stem: str, index: int, resource: dict[str, Any], timing: dict[str, Any]
) -> None:
    expected = EXPECTED[(stem, index)]
    if isinstance(expected, Refused):
        with pytest.raises(TimingError) as refused:
            _two_weeks(resource, timing)
        assert refused.value.field == expected.field, refused.value.message
        assert refused.value.message
        return

    found = _two_weeks(resource, timing)
    assert len(found) == expected.count, expected.note
    assert tuple(sorted({o.local_time.strftime("%H:%M") for o in found})) == expected.times
    days = sorted({o.local_date.isoformat() for o in found})
    if isinstance(expected.dates, int):
        assert len(days) == expected.dates
    else:
        assert tuple(days) == expected.dates
    assert [o.at for o in found] == sorted(o.at for o in found)
    assert len({o.slot_key for o in found}) == len(found)
    assert all(o.zone == ZONE for o in found)
    assert parse_timing(timing).to_fhir() == timing


def test_every_day_gets_the_same_doses_in_a_plain_daily_example() -> None:
    resource = json.loads((HL7 / "medicationrequest0312.json").read_text())
    found = _two_weeks(resource, resource["dosageInstruction"][0]["timing"])
    per_day: dict[date, list[str]] = {}
    for o in found:
        per_day.setdefault(o.local_date, []).append(o.slot_key.split("#")[1])
    assert len(per_day) == 14
    assert all(keys == ["1of3", "2of3", "3of3"] for keys in per_day.values())


def _synthea_timings() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(path.read_text())
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") != "MedicationRequest":
                continue
            for dosage in resource.get("dosageInstruction", []):
                if "timing" in dosage:
                    out.append((path.stem, resource, dosage["timing"]))
    return out


def test_synthea_timings_expand_or_are_refused_cleanly() -> None:
    timings = _synthea_timings()
    assert len(timings) >= 9
    expanded = 0
    for stem, resource, timing in timings:
        try:
            found = _two_weeks(resource, timing)
        except TimingError as refused:
            assert refused.field, stem
            continue
        expanded += 1
        assert found, (stem, timing)
        assert len({o.slot_key for o in found}) == len(found)
        assert [o.at for o in found] == sorted(o.at for o in found)
    assert expanded == len(timings)  # all of Synthea's shapes (QD, BID, Q4H, Q6H) are supported
