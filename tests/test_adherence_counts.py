"""The panel's adherence counted in the database (``backend/services/adherence_counts``) gives
exactly the numbers of the full computation (``backend/services/adherence``), on a varied
dataset: patients in zones from UTC-11 to UTC+14 with their own routines (bedtime after
midnight), every kind of schedule (plain, phased by their start, hourly, drifting, bounded,
counted), medicines started inside the window or ending in it, home-zone policies far from
the patient, paused, stopped and as-needed ones, and logs taken on time or late, skipped,
undone, logged against a key the schedule no longer has, extra doses, doses logged inside
the 4-hour window and ahead of time -- at instants around the DST changes, for 7, 30 and 90
days.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import insert, select

from backend import db
from backend.models import AdherenceDay, DoseLog, Medication, Patient
from backend.schedule.medicines import occurrences
from backend.services.adherence import adherence
from backend.services.adherence_counts import overall_tallies
from backend.services.doses import Report, correct, log_dose, undo
from backend.services.medications import update_medication
from backend.services.profiles import update_patient
from tests.conftest import Clock, World
from tests.test_adherence_shared_slots import ON_THEIR_OWN, SHARED

# (patient zone, home zone of their home-policy medicines)
PEOPLE = (
    ("America/New_York", "Europe/Madrid"),
    ("Europe/Madrid", "America/New_York"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    ("Australia/Sydney", "Pacific/Pago_Pago"),
    ("Pacific/Honolulu", "Pacific/Kiritimati"),
    ("Pacific/Kiritimati", "Pacific/Pago_Pago"),
)
# wake, breakfast, lunch, dinner, bed (the second: bedtime after midnight)
ROUTINES = tuple(
    tuple(clock_time(*hm) for hm in routine)
    for routine in (
        ((7, 0), (8, 0), (12, 30), (18, 30), (22, 0)),
        ((5, 45), (6, 30), (11, 50), (20, 15), (0, 30)),
    )
)
INSTANTS = (
    datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
    datetime(2026, 3, 9, 12, 0, tzinfo=UTC),  # just after the US spring-forward
    datetime(2026, 4, 6, 3, 0, tzinfo=UTC),  # just after Sydney falls back
    datetime(2026, 10, 26, 23, 30, tzinfo=UTC),  # just after Europe falls back
)
SCHEDULES = [*SHARED.values(), *ON_THEIR_OWN.values()]


def _medicines(
    rng: random.Random, patient: Patient, home: str, at: datetime, by: int
) -> list[Medication]:
    today = at.astimezone(ZoneInfo(patient.time_zone)).date()
    meds = []
    for k, timing in enumerate(SCHEDULES):
        start = today - timedelta(days=rng.choice([400, 120, 95, 40, 31, 20, 3, 0, -2]))
        end = rng.choice([None, None, None, today - timedelta(days=10), today + timedelta(days=3)])
        policy = rng.choice(["local", "local", "home"])
        meds.append(
            Medication(
                patient_id=patient.id,
                name=f"M{k}",
                timing=timing,
                status=rng.choice(["active"] * 8 + ["paused", "stopped"]),
                as_needed=False,
                start_date=start,
                end_date=end if end is None or end >= start else None,
                tz_policy=policy,
                home_time_zone=home if policy == "home" else patient.time_zone,
                # added on its start date at 09:00 UTC: from then on (``starts_at``)
                created_at=datetime.combine(start, clock_time(9, 0), UTC),
                created_by_user_id=by,
            )
        )
    for timing in (None, {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}):
        meds.append(
            Medication(
                patient_id=patient.id,
                name="As needed" if timing else "No schedule",
                timing=timing,
                as_needed=timing is not None,
                status="active",
                start_date=today - timedelta(days=200),
                tz_policy="local",
                home_time_zone=patient.time_zone,
                created_by_user_id=by,
            )
        )
    return meds


def _logs(
    rng: random.Random, med: Medication, patient: Patient, at: datetime, by: int
) -> list[dict[str, Any]]:
    rows = []
    for o in occurrences(med, patient, at - timedelta(days=95), at + timedelta(days=1)):
        roll = rng.random()
        if o.at > at and roll > 0.1:
            continue  # the future: only a few skipped ahead
        status = "skipped" if o.at > at or roll < 0.1 else "taken"
        if 0.85 < roll < 0.97:
            continue  # missed (or still open, inside the 4-hour window)
        key = o.slot_key
        if roll >= 0.97:
            key = f"{o.local_date.isoformat()}T03:33"  # a slot the schedule no longer has
        scheduled = o.at + timedelta(days=rng.choice([0] * 20 + [1, -1, -3]))  # travel since
        rows.append(
            {
                "patient_id": patient.id,
                "medication_id": med.id,
                "client_id": f"{med.id}-{o.slot_key}-{len(rows)}",
                "status": status,
                "late": status == "taken" and rng.random() < 0.2,
                "slot_key": key,
                "scheduled_at": scheduled,
                "taken_at": min(o.at, at),
                "logged_by_user_id": by,
                "logged_at": min(o.at, at),
                "undone_at": at if rng.random() < 0.04 else None,
                "corrections": [],
            }
        )
    for day in range(0, 90, 9):  # extra doses: no slot
        when = at - timedelta(days=day, hours=1)
        rows.append(
            {
                "patient_id": patient.id,
                "medication_id": med.id,
                "client_id": f"{med.id}-extra-{day}",
                "status": "taken",
                "late": False,
                "slot_key": None,
                "scheduled_at": None,
                "taken_at": when,
                "logged_by_user_id": by,
                "logged_at": when,
                "undone_at": None,
                "corrections": [],
            }
        )
    return rows


def _dataset(at: datetime, by: int) -> list[Patient]:
    rng = random.Random(at.toordinal())
    session = db.session()
    patients = []
    for k, (zone, home) in enumerate(PEOPLE):
        for r, routine in enumerate(ROUTINES):
            wake, breakfast, lunch, dinner, bed = routine
            patient = Patient(
                display_name=f"P{k}{r}",
                time_zone=zone,
                wake_time=wake,
                breakfast_time=breakfast,
                lunch_time=lunch,
                dinner_time=dinner,
                bed_time=bed,
                created_by_user_id=by,
            )
            session.add(patient)
            session.flush()
            meds = _medicines(rng, patient, home, at, by)
            session.add_all(meds)
            session.flush()
            logs = [
                log
                for m in meds
                if m.timing and not m.as_needed
                for log in _logs(rng, m, patient, at, by)
            ]
            session.execute(insert(DoseLog), logs)
            patients.append(patient)
    nothing = Patient(display_name="No medicines", time_zone="UTC", created_by_user_id=by)
    session.add(nothing)
    session.commit()
    return [*patients, nothing]


@pytest.mark.parametrize("at", INSTANTS, ids=[a.date().isoformat() for a in INSTANTS])
def test_the_counts_equal_the_full_computation(
    ctx: Flask, world: World, clock: Clock, at: datetime
) -> None:
    clock.at = at
    patients = _dataset(at, world.users["priya"].id)
    ids = [p.id for p in patients]
    checked = 0
    for days in (7, 30, 90):
        full = {
            r.patient.id: r.overall.as_dict() for r in adherence(db.session(), patients, days, at)
        }
        counted = overall_tallies(db.session(), ids, days, at)
        assert counted == full, days
        checked += sum(t["scheduled"] + t["pending"] for t in full.values())
        # and for part of them (the panel counts only the patients without a fresh snapshot)
        assert overall_tallies(db.session(), ids[::3], days, at) == {i: full[i] for i in ids[::3]}
    assert checked > 5000
    # the dataset has what it should: every kind of answer
    kinds = {
        (t["taken"] > 0, t["skipped"] > 0, t["missed"] > 0, t["pending"] > 0) for t in full.values()
    }
    assert (True, True, True, True) in kinds


def test_no_patients_or_unknown_ones_count_nothing(ctx: Flask) -> None:
    at = INSTANTS[0]
    assert overall_tallies(db.session(), [], 30, at) == {}
    assert overall_tallies(db.session(), [999_999], 30, at) == {}


def test_medicines_with_no_slot_in_the_window_count_nothing(ctx: Flask, world: World) -> None:
    """A panel whose only medicine starts next week: nothing scheduled, nothing to match."""
    at = INSTANTS[0]
    by = world.users["priya"].id
    patient = Patient(display_name="Starts later", time_zone="UTC", created_by_user_id=by)
    db.session.add(patient)
    db.session.flush()
    db.session.add(
        Medication(
            patient_id=patient.id,
            name="Later",
            timing=SCHEDULES[0],
            status="active",
            as_needed=False,
            start_date=(at + timedelta(days=7)).date(),
            tz_policy="local",
            home_time_zone="UTC",
            created_by_user_id=by,
        )
    )
    db.session.commit()
    (full,) = adherence(db.session(), [patient], 30, at)
    assert overall_tallies(db.session(), [patient.id], 30, at) == {
        patient.id: full.overall.as_dict()
    }
    assert full.overall.scheduled == 0


def _stored_days() -> int:
    return len(db.session.scalars(select(AdherenceDay)).all())


def _check(patients: list[Patient], at: datetime) -> None:
    """The counts (keeping what they settled) equal the full computation, then again from
    what they kept."""
    db.session.expire_all()
    ids = [p.id for p in patients]
    for days in (7, 30):
        full = {
            r.patient.id: r.overall.as_dict() for r in adherence(db.session(), patients, days, at)
        }
        assert overall_tallies(db.session(), ids, days, at) == full, days
        db.session.commit()
        assert overall_tallies(db.session(), ids, days, at, keep=False) == full, days


def _missed_slot(med: Medication, patient: Patient, at: datetime) -> Any:
    """A slot of a settled day with no live log: the dose nobody logged."""
    logged = set(
        db.session.scalars(
            select(DoseLog.slot_key).where(
                DoseLog.medication_id == med.id, DoseLog.undone_at.is_(None)
            )
        )
    )
    for o in occurrences(med, patient, at - timedelta(days=6), at - timedelta(days=3)):
        if o.slot_key not in logged:
            return o
    return None


def test_stored_days_give_the_same_numbers_absent_partial_and_stale(
    ctx: Flask, world: World, clock: Clock
) -> None:
    """Settled days' tallies (adherence_days) change nothing a user sees: absent, present,
    partly present, and after each change that makes them stale (a dose logged late, undone,
    corrected, a medicine changed, the zone changed); a dose logged on time leaves them be."""
    at = clock.at = INSTANTS[1]  # just after the US spring-forward
    priya = world.users["priya"]
    patients = _dataset(at, priya.id)
    ids = [p.id for p in patients]
    full = {r.patient.id: r.overall.as_dict() for r in adherence(db.session(), patients, 30, at)}
    assert overall_tallies(db.session(), ids, 30, at, keep=False) == full
    assert _stored_days() == 0
    _check(patients, at)
    assert _stored_days() > 25 * len(ids)
    # partly present: every other day gone
    for row in db.session.scalars(select(AdherenceDay)).all():
        if row.day.toordinal() % 2:
            db.session.delete(row)
    db.session.commit()
    _check(patients, at)

    patient = patients[0]  # New York
    med = next(
        m
        for m in db.session.scalars(select(Medication).where(Medication.patient_id == patient.id))
        if m.status == "active" and not m.as_needed and m.timing and _missed_slot(m, patient, at)
    )
    version = patient.adherence_version
    # a dose logged on time: no stored day can hold its slot
    (now_slot,) = [
        o
        for o in occurrences(med, patient, at - timedelta(days=1), at)
        if o.at > at - timedelta(hours=2)
    ][:1] or [None]
    if now_slot is not None and not db.session.scalar(
        select(DoseLog.id).where(
            DoseLog.medication_id == med.id, DoseLog.slot_key == now_slot.slot_key
        )
    ):
        log_dose(
            db.session(), med, patient, priya, Report("on-time", "taken", at, now_slot.slot_key)
        )
        db.session.commit()
        db.session.refresh(patient)
        assert patient.adherence_version == version
        _check(patients, at)

    # a dose logged late, days after its slot
    slot = _missed_slot(med, patient, at)
    late, _ = log_dose(
        db.session(),
        med,
        patient,
        priya,
        Report("late-1", "taken_late", slot.at + timedelta(days=1), slot.slot_key),
    )
    db.session.commit()
    db.session.refresh(patient)
    assert patient.adherence_version > version
    _check(patients, at)
    # undone
    undo(db.session(), med, late, priya)
    db.session.commit()
    _check(patients, at)
    # an old log corrected
    old = db.session.scalars(
        select(DoseLog).where(
            DoseLog.medication_id == med.id,
            DoseLog.undone_at.is_(None),
            DoseLog.status == "taken",
            DoseLog.scheduled_at < at - timedelta(days=5),
            DoseLog.scheduled_at > at - timedelta(days=20),
        )
    ).first()
    assert old is not None
    correct(db.session(), med, old, priya, {"status": "skipped"})
    db.session.commit()
    _check(patients, at)
    # the medicine paused, then its schedule changed
    update_medication(db.session(), med, {"status": "paused"})
    db.session.commit()
    _check(patients, at)
    update_medication(db.session(), med, {"status": "active", "timing": SCHEDULES[1]})
    db.session.commit()
    _check(patients, at)
    # the patient moves: every day boundary moves with the zone
    update_patient(db.session(), patient, priya, {"time_zone": "Asia/Tokyo"})
    db.session.commit()
    _check(patients, at)
    # and later the same day, the days stored at the earlier instant still count
    clock.at = at + timedelta(hours=20)
    _check(patients, clock.at)


def test_stored_days_hold_each_days_first_and_last_slot_to_the_second(
    ctx: Flask, world: World, clock: Clock
) -> None:
    """A stored day's instants (sent to PostgreSQL as microseconds since the epoch) are the
    first and last of the day's slots, as the schedule engine gives them, whatever the zone
    or the DST change in the days around (they decide whether a window holds the day)."""
    at = clock.at = INSTANTS[3]  # just after Europe falls back
    patients = _dataset(at, world.users["priya"].id)
    overall_tallies(db.session(), [p.id for p in patients], 30, at)
    db.session.commit()
    checked = 0
    for patient in patients:
        meds = db.session.scalars(
            select(Medication).where(
                Medication.patient_id == patient.id,
                Medication.status == "active",
                Medication.as_needed.is_(False),
            )
        ).all()
        slots: dict[Any, list[datetime]] = {}
        for med in meds:
            for o in occurrences(med, patient, at - timedelta(days=40), at):
                slots.setdefault(o.local_date, []).append(o.at)
        for row in db.session.scalars(
            select(AdherenceDay).where(AdherenceDay.patient_id == patient.id)
        ):
            if row.first_at is None:
                assert row.day not in slots or row.scheduled == 0
                continue
            assert (row.first_at, row.last_at) == (min(slots[row.day]), max(slots[row.day]))
            assert row.scheduled == len(slots[row.day])
            checked += 1
    assert checked > 20 * len(patients[:-1])


def test_a_routine_changed_between_two_panels_moves_the_slots_counted(
    ctx: Flask, world: World, clock: Clock
) -> None:
    """Plain schedules' slots are kept across calls (by pattern, zone and days): a patient
    whose meal times change between two panels is counted at the new times, as the full
    computation does, without the days stored before the change."""
    at = clock.at = INSTANTS[0]
    priya = world.users["priya"]
    patients = _dataset(at, priya.id)
    _check(patients, at)
    patient = patients[0]
    before = overall_tallies(db.session(), [patient.id], 7, at, keep=False)
    update_patient(
        db.session(),
        patient,
        priya,
        {"breakfast_time": clock_time(10, 45), "dinner_time": clock_time(21, 40)},
    )
    db.session.commit()
    _check(patients, at)
    # the check above holds whatever the change did; this one says the change did something
    assert overall_tallies(db.session(), [patient.id], 7, at, keep=False) != before


def test_days_stored_just_after_midnight_with_a_bedtime_dose_after_it_stay_exact(
    ctx: Flask, world: World, clock: Clock
) -> None:
    """Days settle soon after their last midnight: a bedtime dose after midnight (four doses a
    day, bed at 00:30) is dated the next day, so at 00:20 in Sydney the day before is complete
    without it, and the numbers then and later on (from what was stored) stay exact."""
    at = clock.at = datetime(2026, 11, 25, 13, 20, tzinfo=UTC)  # 00:20 in Sydney (UTC+11)
    by = world.users["priya"].id
    wake, breakfast, lunch, dinner, bed = ROUTINES[1]
    patient = Patient(
        display_name="Late sleeper",
        time_zone="Australia/Sydney",
        wake_time=wake,
        breakfast_time=breakfast,
        lunch_time=lunch,
        dinner_time=dinner,
        bed_time=bed,
        created_by_user_id=by,
    )
    db.session.add(patient)
    db.session.flush()
    med = Medication(
        patient_id=patient.id,
        name="QID",
        timing={"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
        status="active",
        as_needed=False,
        start_date=at.date() - timedelta(days=60),
        tz_policy="local",
        home_time_zone=patient.time_zone,
        created_by_user_id=by,
    )
    db.session.add(med)
    db.session.flush()
    logs = [
        {
            "patient_id": patient.id,
            "medication_id": med.id,
            "client_id": f"{med.id}-{o.slot_key}",
            "status": "taken",
            "late": False,
            "slot_key": o.slot_key,
            "scheduled_at": o.at,
            "taken_at": o.at,
            "logged_by_user_id": by,
            "logged_at": o.at,
            "undone_at": None,
            "corrections": [],
        }
        for o in occurrences(med, patient, at - timedelta(days=35), at + timedelta(days=1))
    ]
    db.session.execute(insert(DoseLog), logs)
    db.session.commit()
    _check([patient], at)
    for later in (at + timedelta(hours=1), at + timedelta(hours=20)):
        clock.at = later
        _check([patient], later)
