"""The today view is served from a cache (backend/models/today_cache.py): what a phone shows
must be exactly what a fresh computation would show, after every kind of change and as time
passes -- and each reader still sees only what they may.

The clock starts at 2026-11-25 15:00 UTC = 10:00 in New York, María's zone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select

from backend import db
from backend.models import CaregiverGrant, Patient, TodayCacheRow
from backend.services import today_cache
from backend.services.today_cache import Wanted
from tests.conftest import Api, Clock, World
from tests.test_checkin_schedules import DAILY_1030, PHQ2_ANSWERS
from tests.test_medications import BID_WITH_MEALS, DAILY_8, add_med, log, ny

READERS = ("maria", "ana")  # the patient, and her daughter (a caregiver)
PRN = {"name": "Paracetamol", "as_needed": True, "prn_max_per_24h": 2, "timing": None}


def today(api: Api, who: str) -> list[dict[str, Any]]:
    r = api.get("/me/today", as_=who)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["patients"]  # type: ignore[no-any-return]


def fresh(api: Api, who: str) -> list[dict[str, Any]]:
    """The same view computed from scratch: the cache emptied first."""
    db.session.execute(delete(TodayCacheRow))
    db.session.commit()
    return today(api, who)


def cached_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(TodayCacheRow)) or 0


def assert_served_as_fresh(api: Api, after: str = "") -> None:
    for who in READERS:
        served = today(api, who)
        assert served == today(api, who)  # the second answer is a cache hit
        computed = fresh(api, who)
        stale = {k for p, q in zip(served, computed, strict=True) for k in p if p[k] != q[k]}
        assert served == computed, f"{who} was served a stale {stale} after {after}"
        today(api, who)  # leave the day cached for the next change


class Story:
    """María's day, changed in every way that changes what it shows."""

    def __init__(self, api: Api, world: World, clock: Clock) -> None:
        self.api, self.world, self.clock = api, world, clock
        self.meds: list[dict[str, Any]] = []
        self.logs: list[int] = []
        self.appointments: list[int] = []
        self.n = 0

    def path(self, tail: str = "") -> str:
        return f"/patients/{self.world.maria}{tail}"

    def add_medicine(self) -> None:
        timing = random.choice([BID_WITH_MEALS, DAILY_8])
        self.meds.append(add_med(self.api, self.world.maria, timing=timing))

    def add_prn(self) -> None:
        self.meds.append(add_med(self.api, self.world.maria, **PRN))

    def take_a_dose(self) -> None:
        if not self.meds:
            return
        med = random.choice(self.meds)
        today_doses = today(self.api, "maria")[0]["doses"] or []
        slots = [d["slot_key"] for d in today_doses if d["medication_id"] == med["id"]]
        self.n += 1
        extra = {"slot_key": random.choice(slots)} if slots else {}
        status = random.choice(["taken", "taken", "skipped"]) if slots else "taken"
        if status == "skipped":
            extra["skip_reason"] = "Nausea"
        r = log(
            self.api, self.world.maria, med["id"], "maria", f"c-{self.n:06d}",
            self.clock.at - timedelta(minutes=5), status=status, **extra,
        )  # fmt: skip
        if r.status_code == 201:
            self.logs.append(r.get_json()["id"])

    def undo_a_dose(self) -> None:
        if self.logs:
            log_id = self.logs.pop(random.randrange(len(self.logs)))
            self.api.delete(self.path(f"/doses/{log_id}"), as_="maria")

    def stop_a_medicine(self) -> None:
        if self.meds:
            med = self.meds.pop(random.randrange(len(self.meds)))
            r = self.api.patch(
                self.path(f"/medications/{med['id']}"), as_="priya", json={"status": "stopped"}
            )
            assert r.status_code == 200, r.get_json()

    def book(self) -> None:
        start = self.clock.at + timedelta(hours=random.randint(1, 6))
        body = {
            "title": "Nurse visit",
            "type": "home_visit",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
        }
        r = self.api.post(self.path("/appointments"), as_="ana", json=body)
        assert r.status_code == 201, r.get_json()
        self.appointments.append(r.get_json()["id"])

    def cancel(self) -> None:
        if self.appointments:
            appt = self.appointments.pop()
            self.api.post(self.path(f"/appointments/{appt}/cancel"), as_="ana", json={})

    def plan(self) -> None:
        walk = {
            "description": "A 20-minute walk",
            "frequency": "daily",
            "responsible": {"kind": "patient"},
        }
        body = {"title": "Diabetes care", "activities": [walk]}
        r = self.api.post(self.path("/care-plans"), as_="priya", json=body)
        assert r.status_code == 201, r.get_json()

    def schedule_checkin(self) -> None:
        body = {"template": "PHQ-2", "timing": DAILY_1030}
        self.api.post(self.path("/checkin-schedules"), as_="priya", json=body)

    def answer_checkin(self) -> None:
        self.api.post(self.path("/checkin-responses"), as_="maria", json=PHQ2_ANSWERS)

    def move(self) -> None:
        zone = random.choice(["America/New_York", "America/Chicago", "Europe/Madrid"])
        self.api.patch(self.path(), as_="maria", json={"time_zone": zone})

    def routine(self) -> None:
        breakfast = random.choice(["06:45", "07:30", "09:00"])
        self.api.patch(self.path(), as_="maria", json={"breakfast_time": breakfast})

    def wait(self) -> None:
        self.clock.advance(minutes=random.choice([5, 20, 45, 90, 180, 300]))

    def steps(self) -> list[Callable[[], None]]:
        return [
            self.add_medicine, self.add_prn, self.take_a_dose, self.take_a_dose,
            self.undo_a_dose, self.stop_a_medicine, self.book, self.cancel, self.plan,
            self.schedule_checkin, self.answer_checkin, self.move, self.routine,
            self.wait, self.wait, self.wait,
        ]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_change_and_every_hour_is_seen_as_a_fresh_computation_would_show_it(
    api: Api, world: World, clock: Clock, seed: int
) -> None:
    random.seed(seed)
    story = Story(api, world, clock)
    story.add_medicine()
    story.add_prn()
    assert_served_as_fresh(api)
    for _ in range(30):
        step = random.choice(story.steps())
        step()
        assert_served_as_fresh(api, step.__name__)


def test_time_alone_moves_a_dose_from_upcoming_to_due_overdue_and_missed(
    api: Api, world: World, clock: Clock
) -> None:
    add_med(api, world.maria, timing=DAILY_8)  # 08:00 was two hours ago
    clock.at = ny(7, 0)  # a new day, 07:00: the dose is ahead
    seen = []
    for minutes in (0, 31, 40, 121, 301):
        clock.at = ny(7, 0) + timedelta(minutes=minutes)
        seen.append(today(api, "ana")[0]["doses"][0]["status"])
    assert seen == ["upcoming", "due", "due", "overdue", "missed"]
    assert cached_rows() == 1


def test_a_dose_logged_on_another_phone_shows_at_once(api: Api, world: World, clock: Clock) -> None:
    med = add_med(api, world.maria, timing=DAILY_8)
    dose = today(api, "ana")[0]["doses"][0]
    assert dose["status"] == "overdue"  # computed and cached
    r = log(api, world.maria, med["id"], "maria", "c-000001", ny(9, 55), slot_key=dose["slot_key"])
    assert r.status_code == 201, r.get_json()
    assert today(api, "ana")[0]["doses"][0]["status"] == "late"


def test_what_each_reader_may_see_is_chosen_when_served_not_when_cached(
    api: Api, world: World
) -> None:
    add_med(api, world.maria)
    assert today(api, "maria")[0]["doses"]  # cached by the patient, who sees everything
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == world.users["ana"].id)
    ).one()
    grant.permissions = [p for p in grant.permissions if p != "view_medications"]
    db.session.commit()
    ana = today(api, "ana")[0]
    assert ana["doses"] is None and ana["prn"] is None and ana["extra_doses"] is None
    assert today(api, "maria")[0]["doses"]  # still hers to see


def test_a_day_computed_from_data_a_change_replaced_is_never_served(
    api: Api, world: World, clock: Clock
) -> None:
    """The race: a reader computes María's day, a dose log commits, then the reader stores
    what it computed. The stored row carries the version the reader started from."""
    add_med(api, world.maria, timing=DAILY_8)
    patient = db.session.get(Patient, world.maria)
    assert patient is not None
    started_at = patient.today_version
    stale: today_cache.Sections = {name: "[]" for name in today_cache.SECTIONS}
    meds = add_med(api, world.maria, name="Lisinopril", timing=DAILY_8)  # commits a change
    assert meds
    db.session.expire_all()
    patient = db.session.get(Patient, world.maria)
    assert patient is not None and patient.today_version > started_at
    late = Wanted(patient, ny(10).date())
    today_cache.store(
        db.session, [(late, started_at, clock.at + timedelta(hours=1), stale)], clock.at
    )
    db.session.commit()
    doses = today(api, "maria")[0]["doses"]
    assert {d["name"] for d in doses} == {"Metformin", "Lisinopril"}


def test_a_cached_view_reads_no_medicine_log_or_appointment(
    api: Api, world: World, ctx: Any
) -> None:
    add_med(api, world.maria)
    add_med(api, world.chen, who="david", name="Donepezil", timing=DAILY_8)
    today(api, "ana")  # computed and stored
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        today(api, "ana")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    kinds = [s.lstrip().split(None, 1)[0].upper() for s in statements]
    # One read (Ana, her phones, whom she cares for with their cached days), then the access
    # log: the sign-in found her in that read, not in a query of its own.
    assert kinds == ["SELECT", "INSERT"], statements
    assert "medications" not in statements[0]


def test_days_long_gone_are_dropped_and_today_is_kept(api: Api, world: World) -> None:
    add_med(api, world.maria)
    for who in READERS:
        today(api, who)
    api.get("/me/today?date=2026-11-20", as_="maria")  # an old day looked at
    assert cached_rows() == 2
    assert today_cache.prune(db.session, ny(10).date()) == 1
    db.session.commit()
    kept = db.session.scalars(select(TodayCacheRow.day)).all()
    assert [d.isoformat() for d in kept] == ["2026-11-25"]
