"""An as-needed dose over its 24-hour maximum raises a worklist item for the care team and
alerts the caregivers who receive missed-dose alerts; a tracked supply without a threshold of
its own asks for a refill at 7 days left, and at none left whatever the schedule.

Through the API, the planner and the dispatcher (with the worker's wiring) to the local FCM
server; SQLite and (TEST_DATABASE_URL) PostgreSQL; the injected clock moves time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import Engine

from backend.reminders.planner import run_planner
from notifications.channels.fcm import FcmChannel
from tests.conftest import START, Api, Clock, World
from tests.fcmserver import FcmServer
from tests.scenes import phones
from tests.wiring import WIRED, dispatch_until

DAILY = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["20:00:00"]}}


@pytest.fixture
def people(api: Api, world: World) -> World:
    return phones(world, "maria", "ana", "priya")


def add(api: Api, world: World, **fields: Any) -> dict[str, Any]:
    body = {"name": "Ibuprofen", "start_date": "2026-11-20", **fields}
    r = api.post(f"/patients/{world.maria}/medications", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    return dict(r.get_json())


def take(api: Api, world: World, med: int, at: datetime, who: str = "maria") -> dict[str, Any]:
    body = {"medication_id": med, "client_id": f"prn-{at:%H%M}", "status": "taken"}
    r = api.post(
        f"/patients/{world.maria}/doses", as_=who, json={**body, "taken_at": at.isoformat()}
    )
    assert r.status_code == 201, r.get_json()
    return dict(r.get_json())


def over_limit_items(api: Api) -> list[dict[str, Any]]:
    r = api.get("/worklist?kind=prn_over_limit", as_="priya")
    assert r.status_code == 200, r.get_json()
    return list(r.get_json())


def test_a_fourth_dose_over_a_maximum_of_three_raises_the_item_and_alerts_ana(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add(api, people, timing=None, as_needed=True, prn_max_per_24h=3)["id"]
    for hours in (0, 3, 6):
        clock.at = START + timedelta(hours=hours)
        assert take(api, people, med, clock.at)["over_limit"] is False
    assert over_limit_items(api) == []

    clock.at = START + timedelta(hours=9)
    assert take(api, people, med, clock.at)["over_limit"] is True  # recorded all the same
    (item,) = over_limit_items(api)
    assert item["patient"]["id"] == people.maria
    assert item["detail"]["taken_last_24h"] == 4
    assert item["detail"]["max_per_24h"] == 3
    assert item["urgent"] is False
    assert item["title"] == "Ibuprofen: 4 doses in 24 hours, over the maximum of 3"

    dispatch_until(engine, channel, clock, clock.at, WIRED)
    (alert,) = fcm.to("ana-phone")
    assert alert["data"]["kind"] == "prn_over_limit"
    assert alert["notification"]["body"] == (
        "María has taken more of an as-needed medicine than its daily maximum."
    )
    assert fcm.to("maria-phone") == []  # she logged it: the answer said over_limit
    assert fcm.to("priya-phone") == []  # the team has the worklist item, not a push

    # A fifth refreshes the same item; it does not open a second.
    clock.at = START + timedelta(hours=10)
    take(api, people, med, clock.at)
    (again,) = over_limit_items(api)
    assert again["id"] == item["id"]
    assert again["title"].startswith("Ibuprofen: 5 doses in 24 hours")


def test_a_dose_too_soon_but_under_the_maximum_raises_nothing(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    med = add(
        api, people, timing=None, as_needed=True, prn_max_per_24h=3, prn_min_interval_minutes=240
    )["id"]
    take(api, people, med, clock.at)
    clock.advance(hours=1)
    assert take(api, people, med, clock.at)["over_limit"] is True  # too soon
    assert over_limit_items(api) == []


def test_undone_before_it_was_sent_the_caregivers_push_is_dropped(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add(api, people, timing=None, as_needed=True, prn_max_per_24h=1)["id"]
    take(api, people, med, clock.at)
    clock.advance(minutes=5)
    mistap = take(api, people, med, clock.at)
    r = api.delete(f"/patients/{people.maria}/doses/{mistap['id']}", as_="maria")
    assert r.status_code == 204
    dispatch_until(engine, channel, clock, clock.at, WIRED)
    assert fcm.to("ana-phone") == []


def test_a_tracked_supply_without_a_threshold_refills_at_seven_days_and_at_none_left(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    plenty = add(api, people, name="Lisinopril", timing=DAILY, quantity_on_hand=30)
    assert plenty["refill_threshold_days"] is None
    assert plenty["supply"] == {"days_left": 30.0, "needs_refill": False}
    week = add(api, people, name="Atorvastatin", timing=DAILY, quantity_on_hand=7)
    assert week["supply"] == {"days_left": 7.0, "needs_refill": True}
    empty = add(api, people, name="Metformin", timing=DAILY, quantity_on_hand=0)
    assert empty["supply"] == {"days_left": 0.0, "needs_refill": True}
    # As needed: no days of supply to count, but none left is none left.
    prn = add(api, people, timing=None, as_needed=True, quantity_on_hand=0)
    assert prn["supply"] == {"days_left": None, "needs_refill": True}
    # Not tracked: nothing to say. A threshold of its own still wins.
    untracked = add(api, people, name="Aspirin", timing=DAILY)
    assert untracked["supply"] == {"days_left": None, "needs_refill": False}
    own = add(api, people, name="Vitamin D", timing=DAILY, quantity_on_hand=7)
    r = api.patch(
        f"/patients/{people.maria}/medications/{own['id']}",
        as_="maria",
        json={"refill_threshold_days": 3},
    )
    assert r.get_json()["supply"] == {"days_left": 7.0, "needs_refill": False}

    # And María's phone is told once: three medicines, one push that counts them.
    dispatch_until(engine, channel, clock, clock.at, WIRED)
    (refill,) = [m for m in fcm.to("maria-phone") if m["data"]["kind"] == "refill"]
    assert refill["data"]["count"] == "3"
    assert refill["notification"]["body"] == (
        "3 de sus medicamentos se están acabando. Es hora de pedir más."
    )


def refills_to(fcm: FcmServer, phone: str) -> list[str]:
    return [m["notification"]["body"] for m in fcm.to(phone) if m["data"]["kind"] == "refill"]


def test_two_medicines_low_the_same_day_are_one_push_that_counts_them(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    """Not two identical "one of your medicines is running low" pushes: one that says two,
    naming neither on the lock screen; the next day's is one push again."""
    add(api, people, name="Atorvastatin", timing=DAILY, quantity_on_hand=5)
    add(api, people, name="Metformin", timing=DAILY, quantity_on_hand=0)
    dispatch_until(engine, channel, clock, clock.at, WIRED)
    assert refills_to(fcm, "maria-phone") == [
        "2 de sus medicamentos se están acabando. Es hora de pedir más."
    ]
    # A medicine that runs low later the same day waits for tomorrow's push.
    add(api, people, name="Lisinopril", timing=DAILY, quantity_on_hand=1)
    dispatch_until(engine, channel, clock, clock.at + timedelta(hours=2), WIRED)
    assert len(refills_to(fcm, "maria-phone")) == 1
    # The next day, in English for someone who reads English: one push, three medicines.
    r = api.patch("/me", as_="maria", json={"language": "en"})
    assert r.status_code == 200, r.get_json()
    clock.advance(days=1)
    run_planner(engine, clock.at)
    dispatch_until(engine, channel, clock, clock.at, WIRED)
    assert refills_to(fcm, "maria-phone")[1:] == [
        "3 of your medicines are running low. Time to order a refill."
    ]


def test_one_medicine_low_is_its_own_push_named_for_someone_who_opted_in(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    r = api.patch("/me", as_="maria", json={"show_details_on_lock_screen": True})
    assert r.status_code == 200, r.get_json()
    add(api, people, name="Metformin", timing=DAILY, quantity_on_hand=0)
    dispatch_until(engine, channel, clock, clock.at, WIRED)
    assert refills_to(fcm, "maria-phone") == [
        "Su Metformin se está acabando. Es hora de pedir más."
    ]
