"""The panel adherence expands a plain daily or weekly schedule once for every medicine that
started well before the window (``backend/services/adherence._dates_free_key``). Pure checks
that this changes no slot: two medicines with the same key have exactly the same
occurrences in the window, across zones, DST changes, home-zone policy and start dates right
at the margin; and schedules whose slots do depend on the start never share.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backend.models import Medication, Patient
from backend.schedule.medicines import occurrences
from backend.services.adherence import _dates_free_key, window

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"

SHARED: dict[str, dict[str, Any]] = {
    "QD timeOfDay": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                "timeOfDay": ["08:00:00"]}},
    "QD code": {"code": {"coding": [{"system": GTS, "code": "QD"}]},
                "repeat": {"timeOfDay": ["20:00:00"]}},
    "BID with meals": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                                  "when": ["CM", "CV"]}},
    "TID": {"code": {"coding": [{"system": GTS, "code": "TID"}]}},
    "QID default times": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
    "at bedtime": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"],
                              "offset": 30}},
    "weekly on Monday": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk",
                                    "dayOfWeek": ["mon"], "when": ["ACM"], "offset": 30}},
    "weekdays": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                            "dayOfWeek": ["mon", "tue", "wed", "thu", "fri"],
                            "timeOfDay": ["07:15:00"]}},
}  # fmt: skip
ON_THEIR_OWN: dict[str, dict[str, Any]] = {
    "every other day": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "d",
                                   "timeOfDay": ["09:00:00"]}},
    "3 a week from the start": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}},
    "every 2 weeks on Friday": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "wk",
                                           "dayOfWeek": ["fri"]}},
    "monthly": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}},
    "Q6H": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
    "Q5H": {"repeat": {"frequency": 1, "period": 5, "periodUnit": "h"}},
    "10 days": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                           "boundsDuration": {"value": 10, "unit": "d", "code": "d",
                                              "system": "http://unitsofmeasure.org"}}},
    "14 doses": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "count": 14}},
}  # fmt: skip
ZONES = ("America/New_York", "Europe/Madrid", "Asia/Kolkata", "Australia/Sydney")
# instants around both DST changes of 2026 in both hemispheres, and an ordinary day
INSTANTS = (
    datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
    datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
    datetime(2026, 4, 6, 3, 0, tzinfo=UTC),
    datetime(2026, 10, 26, 23, 30, tzinfo=UTC),
)


def _patient(zone: str) -> Patient:
    return Patient(
        id=1,
        time_zone=zone,
        wake_time=clock_time(6, 30),
        breakfast_time=clock_time(7, 30),
        lunch_time=clock_time(12, 15),
        dinner_time=clock_time(19, 0),
        bed_time=clock_time(0, 30),  # after midnight: bedtime slots leave their day
    )


def _med(timing: dict[str, Any], start: date, policy: str, home: str) -> Medication:
    return Medication(
        id=1,
        patient_id=1,
        name="M",
        timing=timing,
        status="active",
        as_needed=False,
        start_date=start,
        end_date=None,
        tz_policy=policy,
        home_time_zone=home,
    )


def _slots(med: Medication, patient: Patient, start: datetime, end: datetime) -> list[Any]:
    return [(o.local_date, o.slot_key, o.at) for o in occurrences(med, patient, start, end)]


@pytest.mark.parametrize("name", sorted(SHARED))
@pytest.mark.parametrize("days", [7, 30, 90])
def test_medicines_with_the_same_key_have_the_same_slots(name: str, days: int) -> None:
    timing = SHARED[name]
    compared = 0
    for zone in ZONES:
        patient = _patient(zone)
        for at in INSTANTS:
            start, end = window(patient, days, at)
            first_day = start.astimezone(ZoneInfo(zone)).date()
            for policy, home in (("local", zone), ("home", "Europe/London")):
                keyed: dict[Any, list[Any]] = {}
                # right at the margin, a little before it, long before
                for back in (7, 8, 9, 13, 40, 400):
                    med = _med(timing, first_day - timedelta(days=back), policy, home)
                    key = _dates_free_key(med, patient, start, end)
                    assert key is not None, (name, back)
                    slots = _slots(med, patient, start, end)
                    assert keyed.setdefault(key, slots) == slots, (name, zone, at, policy, back)
                    compared += len(slots)
                assert len(keyed) == 1
                # too recent to share: on its own (its own start cuts its slots)
                recent = _med(timing, first_day - timedelta(days=5), policy, home)
                assert _dates_free_key(recent, patient, start, end) is None
    assert compared > 0


@pytest.mark.parametrize("name", sorted(ON_THEIR_OWN))
def test_schedules_phased_or_limited_by_their_start_never_share(name: str) -> None:
    patient = _patient("America/New_York")
    start, end = window(patient, 30, INSTANTS[0])
    med = _med(ON_THEIR_OWN[name], date(2026, 1, 5), "local", "America/New_York")
    assert _dates_free_key(med, patient, start, end) is None


def test_a_medicine_ending_soon_or_not_active_never_shares() -> None:
    patient = _patient("America/New_York")
    start, end = window(patient, 30, INSTANTS[0])
    med = _med(SHARED["TID"], date(2026, 1, 5), "local", "America/New_York")
    assert _dates_free_key(med, patient, start, end) is not None
    med.end_date = date(2026, 11, 30)
    assert _dates_free_key(med, patient, start, end) is None
    med.end_date, med.status = None, "paused"
    assert _dates_free_key(med, patient, start, end) is None


def test_the_key_ignores_what_a_schedule_does_not_read() -> None:
    """Clock times ignore the routine, and a home zone equal to the patient's is the local
    policy: such medicines share one expansion (and have the same slots); a routine the
    schedule does read keeps them apart."""
    at = INSTANTS[1]
    early = _patient("America/New_York")
    late = _patient("America/New_York")
    late.breakfast_time, late.dinner_time = clock_time(9, 45), clock_time(20, 30)
    start, end = window(early, 30, at)
    first_day = start.astimezone(ZoneInfo("America/New_York")).date()
    keys = {}
    for name in ("QD timeOfDay", "BID with meals"):
        for patient in (early, late):
            for policy in ("local", "home"):
                med = _med(SHARED[name], first_day - timedelta(days=60), policy, "America/New_York")
                key = _dates_free_key(med, patient, start, end)
                slots = _slots(med, patient, start, end)
                assert keys.setdefault(key, slots) == slots, (name, policy)
    assert len(keys) == 3  # one for the clock time, one per breakfast and dinner times
