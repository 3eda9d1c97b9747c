"""Reminder scenarios end to end: planner -> outbox -> dispatcher -> real firebase-admin ->
local FCM, with escalation to caregivers. SQLite and (TEST_DATABASE_URL) PostgreSQL; the
injected clock moves time, nothing sleeps.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import CaregiverGrant, Medication, Patient, Reminder
from backend.reminders.planner import plan
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import START, Api, Clock, World
from tests.fcmserver import FcmServer
from tests.scenes import DAILY_NOON, NOON, phones, rows
from tests.scenes import noon_medicine as add_med
from tests.wiring import CHECKED, WIRED
from tests.wiring import dispatch_until as run_until


@pytest.fixture
def people(api: Api, world: World) -> World:
    return phones(world, "maria", "ana", "priya", "david")


def pushes(fcm: FcmServer) -> list[tuple[str, str]]:
    return [(m["token"], m["data"]["kind"]) for m in fcm.received]


def log_dose(api: Api, world: World, med_id: int, at: datetime, who: str = "maria") -> None:
    body = {
        "medication_id": med_id,
        "client_id": f"c-{int(at.timestamp())}-{who}",
        "status": "taken",
        "taken_at": at.isoformat(),
    }
    r = api.post(f"/patients/{world.maria}/doses", as_=who, json=body)
    assert r.status_code == 201, r.get_json()


def test_reminder_then_follow_up_then_caregiver_alert_then_missed(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people)
    run_until(engine, channel, clock, NOON - timedelta(minutes=1))
    assert fcm.received == []
    run_until(engine, channel, clock, NOON)
    assert pushes(fcm) == [("maria-phone", "dose")]
    run_until(engine, channel, clock, NOON + timedelta(minutes=30))
    assert pushes(fcm)[1:] == [("maria-phone", "dose_followup")]
    run_until(engine, channel, clock, NOON + timedelta(minutes=60))
    assert pushes(fcm)[2:] == [("ana-phone", "missed_dose_alert")]
    assert all(n == 1 for n in fcm.tags().values())
    clock.at = NOON + timedelta(hours=4, minutes=5)
    r = api.get("/me/today", as_="maria")
    assert r.status_code == 200, r.get_json()
    day = r.get_json()["patients"][0]
    assert [d["status"] for d in day["doses"] if d["local_time"] == "12:00"] == ["missed"]


def test_a_dose_logged_between_reminder_and_follow_up_cancels_the_rest(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    run_until(engine, channel, clock, NOON + timedelta(minutes=10))
    assert pushes(fcm) == [("maria-phone", "dose")]
    log_dose(api, people, med, clock.at)
    # At once, in the same transaction as the log: nothing left pending for that slot.
    later = rows(kind="dose_followup") + rows(kind="missed_dose_alert")
    assert later
    assert {(r.state, r.cancelled_reason) for r in later} == {("cancelled", "dose_logged")}
    run_until(engine, channel, clock, NOON + timedelta(hours=3))
    assert pushes(fcm) == [("maria-phone", "dose")]


def test_a_dose_logged_early_sends_nothing(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    clock.at = NOON - timedelta(minutes=90)  # inside the matching window
    log_dose(api, people, med, clock.at)
    run_until(engine, channel, clock, NOON + timedelta(hours=3))
    assert fcm.received == []


def test_custom_chain_ana_on_it_at_25_minutes_the_care_team_hears_nothing(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana = people.users["ana"].id
    chain = {
        "steps": [
            {"after_minutes": 20, "notify": "caregiver", "user_id": ana},
            {"after_minutes": 45, "notify": "care_team"},
        ]
    }
    r = api.put(f"/patients/{people.maria}/escalation", as_="maria", json=chain)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["is_default"] is False
    add_med(api, people)
    run_until(engine, channel, clock, NOON + timedelta(minutes=25))
    assert pushes(fcm) == [("maria-phone", "dose"), ("ana-phone", "missed_dose_alert")]
    alert = int(fcm.to("ana-phone")[0]["data"]["reminder_id"])
    # Someone else's alert is not there for you.
    assert api.post(f"/me/alerts/{alert}/acknowledge", as_="maria").status_code == 404
    r = api.post(f"/me/alerts/{alert}/acknowledge", as_="ana")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["acknowledged_by_user_id"] == ana
    assert r.get_json()["acknowledged_by_name"]
    run_until(engine, channel, clock, NOON + timedelta(hours=2))
    assert fcm.to("priya-phone") == []
    team = rows(user_id=people.users["priya"].id)
    assert [(t.state, t.cancelled_reason) for t in team] == [("cancelled", "acknowledged")]


def test_a_caregiver_revoked_after_planning_gets_nothing(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people)
    grant = db.session.scalar(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == people.users["ana"].id)
    )
    assert grant is not None
    assert [r.state for r in rows(user_id=people.users["ana"].id)] == ["pending"]
    r = api.delete(f"/patients/{people.maria}/caregivers/{grant.id}", as_="maria")
    assert r.status_code == 204
    assert [r.cancelled_reason for r in rows(user_id=people.users["ana"].id)] == ["access_revoked"]
    run_until(engine, channel, clock, NOON + timedelta(hours=2))
    assert fcm.to("ana-phone") == []


def test_a_lapsed_grant_is_caught_at_dispatch(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people)
    grant = db.session.scalar(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == people.users["ana"].id)
    )
    assert grant is not None
    grant.ends_at = NOON + timedelta(minutes=30)  # lapses by itself, no request involved
    run_until(engine, channel, clock, NOON + timedelta(hours=2))
    assert fcm.to("ana-phone") == []
    assert [r.cancelled_reason for r in rows(user_id=people.users["ana"].id)] == ["access_revoked"]


def test_planning_twice_creates_nothing_twice(
    ctx: Flask, people: World, api: Api, clock: Clock
) -> None:
    add_med(api, people)
    add_med(api, people, timing={"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}})
    before = db.session.scalar(select(func.count()).select_from(Reminder))
    first = plan(db.session(), clock.at)
    again = plan(db.session(), clock.at)
    later = plan(db.session(), clock.at + timedelta(minutes=5))
    db.session.commit()
    assert first == {"patients": 2} and again == {"patients": 2}  # the hook planned already
    assert set(later) == {"patients"}
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == before
    assert before and len({r.dedupe_key for r in rows()}) == before


def _dst_med(world: World, at: str) -> Medication:
    timing = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": [at]}}
    med = Medication(
        patient_id=world.maria,
        name="Night pill",
        start_date=date(2026, 1, 1),
        timing=timing,
        home_time_zone="America/New_York",
        created_by_user_id=world.users["maria"].id,
    )
    db.session.add(med)
    db.session.flush()
    return med


@pytest.mark.parametrize(
    ("start", "local", "expected"),
    [
        # Fall back, 1 Nov 2026: 01:30 happens twice; the first one fires, once.
        (
            datetime(2026, 10, 31, 12, 0, tzinfo=UTC),
            "01:30:00",
            [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC)],
        ),
        # Spring forward, 8 Mar 2026: 02:30 does not exist; it is 03:30 EDT, once.
        (
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
            "02:30:00",
            [datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC)],
        ),
    ],
)
def test_dst_night_in_new_york_no_doubled_and_no_missing_reminders(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    clock: Clock,
    start: datetime,
    local: str,
    expected: list[datetime],
) -> None:
    clock.at = start
    _dst_med(people, local)
    db.session.commit()
    # The worker plans every quarter hour through the night and dispatches in between.
    end = start + timedelta(hours=44)
    while clock.at <= end:
        plan(db.session(), clock.at)
        db.session.commit()
        while dispatch_once(engine, channel, "w1", clock.at, CHECKED).claimed:
            pass
        clock.advance(minutes=15)
    doses = rows(kind="dose")
    assert [r.due_at for r in doses if r.due_at <= end] == expected
    assert Counter(m["data"]["kind"] for m in fcm.to("maria-phone"))["dose"] == 2
    assert all(n == 1 for n in fcm.tags().values())


def test_an_appointment_rescheduled_cancels_the_old_reminders_and_plans_new_ones(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    first = START + timedelta(hours=30)
    body = {
        "title": "Check-up",
        "type": "in_person",
        "location": "Riverside Clinic",
        "start": first.isoformat(),
        "end": (first + timedelta(minutes=30)).isoformat(),
    }
    r = api.post(f"/patients/{people.maria}/appointments", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    appt = r.get_json()["id"]
    old = rows(kind="appointment")
    assert [x.due_at for x in old] == [first - timedelta(days=1), first - timedelta(hours=2)]
    moved = START + timedelta(hours=40)
    r = api.post(
        f"/patients/{people.maria}/appointments/{appt}/reschedule",
        as_="maria",
        json={"start": moved.isoformat(), "end": (moved + timedelta(hours=1)).isoformat()},
    )
    assert r.status_code == 200, r.get_json()
    after = rows(kind="appointment")
    assert {(x.due_at, x.state) for x in after} == {
        (first - timedelta(days=1), "cancelled"),
        (first - timedelta(hours=2), "cancelled"),
        (moved - timedelta(days=1), "pending"),
        (moved - timedelta(hours=2), "pending"),
    }
    run_until(engine, channel, clock, moved - timedelta(days=1))
    assert pushes(fcm) == [("maria-phone", "appointment")]
    r = api.post(f"/patients/{people.maria}/appointments/{appt}/cancel", as_="maria", json={})
    assert r.status_code == 200, r.get_json()
    run_until(engine, channel, clock, moved)
    assert pushes(fcm) == [("maria-phone", "appointment")]


# -- undoing a dose log --------------------------------------------------------------------


def post_dose(api: Api, world: World, med_id: int, at: datetime, client_id: str) -> int:
    body = {"medication_id": med_id, "client_id": client_id, "status": "taken"}
    r = api.post(
        f"/patients/{world.maria}/doses", as_="maria", json={**body, "taken_at": at.isoformat()}
    )
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def noon_slot(world: World) -> list[tuple[str, int, datetime, str, str | None]]:
    names = {u.id: name for name, u in world.users.items()}
    return [
        (r.kind, names[r.user_id], r.due_at, r.state, r.cancelled_reason)
        for r in rows()
        if r.subject.get("dose_at") == NOON.isoformat()
    ]


def test_undoing_a_mistap_brings_the_reminders_back_and_the_noon_one_is_sent(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    planned = noon_slot(people)
    assert planned == [
        ("dose", "maria", NOON, "pending", None),
        ("dose_followup", "maria", NOON + timedelta(minutes=30), "pending", None),
        ("missed_dose_alert", "ana", NOON + timedelta(minutes=60), "pending", None),
    ]
    clock.at = NOON - timedelta(minutes=10)
    dose = post_dose(api, people, med, clock.at, "mistap-1150")
    assert {(s, why) for *_, s, why in noon_slot(people)} == {("cancelled", "dose_logged")}
    clock.at = NOON - timedelta(minutes=5)
    r = api.delete(f"/patients/{people.maria}/doses/{dose}", as_="maria")
    assert r.status_code == 204, r.get_json()
    # Right after the DELETE: pending again, with their original due times.
    assert noon_slot(people) == planned
    assert len(rows()) == len(planned)  # revived, not doubled
    run_until(engine, channel, clock, NOON)
    assert pushes(fcm) == [("maria-phone", "dose")]
    run_until(engine, channel, clock, NOON + timedelta(minutes=60))
    assert pushes(fcm) == [
        ("maria-phone", "dose"),
        ("maria-phone", "dose_followup"),
        ("ana-phone", "missed_dose_alert"),
    ]


def test_undo_after_the_reminder_time_brings_back_only_what_is_ahead(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    clock.at = NOON - timedelta(minutes=2)
    dose = post_dose(api, people, med, clock.at, "mistap-1158")
    clock.at = NOON + timedelta(minutes=5)  # within the 10 minutes, past the reminder
    r = api.delete(f"/patients/{people.maria}/doses/{dose}", as_="maria")
    assert r.status_code == 204, r.get_json()
    assert noon_slot(people) == [
        ("dose", "maria", NOON, "cancelled", "dose_logged"),
        ("dose_followup", "maria", NOON + timedelta(minutes=30), "pending", None),
        ("missed_dose_alert", "ana", NOON + timedelta(minutes=60), "pending", None),
    ]
    run_until(engine, channel, clock, NOON + timedelta(hours=3))
    assert pushes(fcm) == [("maria-phone", "dose_followup"), ("ana-phone", "missed_dose_alert")]


def test_a_correction_brings_nothing_back(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    clock.at = NOON - timedelta(minutes=10)
    dose = post_dose(api, people, med, clock.at, "mistap-1150")
    clock.at = NOON - timedelta(minutes=8)
    for status in ("skipped", "taken"):
        r = api.patch(
            f"/patients/{people.maria}/doses/{dose}", as_="maria", json={"status": status}
        )
        assert r.status_code == 200, r.get_json()
        assert {(s, why) for *_, s, why in noon_slot(people)} == {("cancelled", "dose_logged")}
    run_until(engine, channel, clock, NOON + timedelta(hours=3))
    assert fcm.received == []


def test_undo_does_not_bring_back_an_alert_to_a_caregiver_revoked_since(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    med = add_med(api, people)
    clock.at = NOON - timedelta(minutes=10)
    dose = post_dose(api, people, med, clock.at, "mistap-1150")
    grant = db.session.scalar(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == people.users["ana"].id)
    )
    assert grant is not None
    r = api.delete(f"/patients/{people.maria}/caregivers/{grant.id}", as_="maria")
    assert r.status_code == 204
    r = api.delete(f"/patients/{people.maria}/doses/{dose}", as_="maria")
    assert r.status_code == 204, r.get_json()
    assert [(k, who, s) for k, who, _, s, _ in noon_slot(people)] == [
        ("dose", "maria", "pending"),
        ("dose_followup", "maria", "pending"),
        ("missed_dose_alert", "ana", "cancelled"),
    ]
    run_until(engine, channel, clock, NOON + timedelta(hours=3))
    assert fcm.to("ana-phone") == []
    assert pushes(fcm) == [("maria-phone", "dose"), ("maria-phone", "dose_followup")]


def test_david_gives_weis_doses_so_he_is_told_it_is_time_and_logging_stops_the_rest(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    """Wei has dementia and no login: his managing caregiver gets the on-time reminder, in
    words that name Wei and no medicine, then the follow-up; his log cancels what is left."""
    chen = db.session.get(Patient, people.chen)
    assert chen is not None
    chen.time_zone = "America/New_York"
    db.session.commit()
    body = {"name": "Donepezil", "timing": DAILY_NOON, "start_date": "2026-01-01"}
    r = api.post(f"/patients/{people.chen}/medications", as_="david", json=body)
    assert r.status_code == 201, r.get_json()
    med_id = int(r.get_json()["id"])

    run_until(engine, channel, clock, NOON - timedelta(minutes=1), WIRED)
    assert fcm.to("david-phone") == []
    run_until(engine, channel, clock, NOON, WIRED)
    (on_time,) = fcm.to("david-phone")
    assert on_time["data"]["kind"] == "dose"
    assert on_time["notification"]["body"] == "It's time for Wei's medicine."
    run_until(engine, channel, clock, NOON + timedelta(minutes=30), WIRED)
    follow = fcm.to("david-phone")[1]
    assert follow["data"]["kind"] == "dose_followup"
    assert "Donepezil" not in str(fcm.to("david-phone"))

    body = {
        "medication_id": med_id,
        "client_id": "david-noon",
        "status": "taken",
        "taken_at": (NOON + timedelta(minutes=32)).isoformat(),
    }
    clock.at = NOON + timedelta(minutes=33)
    r = api.post(f"/patients/{people.chen}/doses", as_="david", json=body)
    assert r.status_code == 201, r.get_json()
    run_until(engine, channel, clock, NOON + timedelta(hours=2), WIRED)
    assert [m["data"]["kind"] for m in fcm.to("david-phone")] == ["dose", "dose_followup"]
    left = rows(patient_id=people.chen, state="pending")
    assert [r for r in left if r.subject.get("slot_key") == on_time["data"]["slot_key"]] == []


def test_only_an_alert_that_reached_you_can_be_answered_and_it_never_stops_the_patients_own(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    ana = people.users["ana"].id
    chain = {
        "steps": [
            {"after_minutes": 20, "notify": "caregiver", "user_id": ana},
            {"after_minutes": 40, "notify": "patient"},
        ]
    }
    assert api.put(f"/patients/{people.maria}/escalation", as_="maria", json=chain).status_code
    add_med(api, people)
    (pending_alert,) = rows(kind="missed_dose_alert")
    # Planned, not sent: "I'm on it" before anything reached Ana is refused, and changes nothing.
    r = api.post(f"/me/alerts/{pending_alert.id}/acknowledge", as_="ana")
    assert r.status_code == 409
    assert [x.state for x in rows(kind="dose_followup")] == ["pending"]

    run_until(engine, channel, clock, NOON + timedelta(minutes=25))
    assert api.post(f"/me/alerts/{pending_alert.id}/acknowledge", as_="ana").status_code == 200
    # María's own follow-up (step 2, to the patient) still asks her to log it.
    run_until(engine, channel, clock, NOON + timedelta(minutes=45))
    assert [k for _, k in pushes(fcm) if _ == "maria-phone"] == ["dose", "dose_followup"]


def test_a_snooze_survives_a_re_plan_of_the_patient(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    people: World,
    api: Api,
    clock: Clock,
) -> None:
    add_med(api, people)
    run_until(engine, channel, clock, NOON)
    dose = int(fcm.to("maria-phone")[0]["data"]["reminder_id"])
    clock.at = NOON + timedelta(minutes=2)
    r = api.post(f"/me/reminders/{dose}/snooze", as_="maria", json={"minutes": 30})
    assert r.status_code == 200, r.get_json()
    again = r.get_json()["id"]
    # María changes her bed time: every pending reminder of hers is re-planned (the noon
    # dose itself does not move).
    r = api.patch("/me", as_="maria", json={"bed_time": "21:15"})
    assert r.status_code == 200, r.get_json()
    snoozed = db.session.get(Reminder, again)
    assert snoozed is not None and snoozed.state == "pending"
    run_until(engine, channel, clock, NOON + timedelta(minutes=32))
    assert [k for token, k in pushes(fcm) if token == "maria-phone"] == ["dose", "dose"]
    # Her daughter's alert moved with the snooze, and stays moved.
    (alert,) = rows(kind="missed_dose_alert")
    assert alert.due_at == NOON + timedelta(minutes=92)
