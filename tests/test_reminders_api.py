"""The reminders API (chain, snooze, opened, "I'm on it") and the planner's shape: a fixed
number of queries per batch of patients, re-planning when the zone changes, the worker job."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import CaregiverGrant, Medication, Patient, Reminder
from backend.reminders.planner import plan
from notifications.worker import build_scheduler
from tests.conftest import START, Api, Clock, World, assert_error
from tests.queries import statements
from tests.test_reminders_scenarios import DAILY_NOON, NOON, add_med, rows


def _patients(world: World, n: int) -> None:
    user_id = world.users["maria"].id
    for i in range(n):
        patient = Patient(display_name=f"P{i}", created_by_user_id=user_id, time_zone="UTC")
        db.session.add(patient)
        db.session.flush()
        db.session.add(
            CaregiverGrant(
                patient_id=patient.id,
                caregiver_user_id=user_id,
                relationship="other",
                permissions=[],
                is_managing=True,
                granted_by_user_id=user_id,
            )
        )
        for j in range(3):
            db.session.add(
                Medication(
                    patient_id=patient.id,
                    name=f"M{j}",
                    start_date=date(2026, 1, 1),
                    timing=DAILY_NOON,
                    home_time_zone="UTC",
                    created_by_user_id=user_id,
                    refill_threshold_days=5,
                    quantity_on_hand=2.0,
                )
            )
    db.session.flush()


def test_the_planner_makes_the_same_queries_for_3_patients_as_for_60(
    ctx: Flask, engine: Engine, world: World, clock: Clock
) -> None:
    _patients(world, 3)
    with statements(engine) as few:
        plan(db.session(), clock.at)
    _patients(world, 57)
    db.session.execute(select(Reminder.id).limit(1))
    with statements(engine) as many:
        counts = plan(db.session(), clock.at)

    def reads(seen: list[str]) -> int:
        return sum(1 for s in seen if not s.startswith("INSERT"))

    # patients (x2: keyset), grants, team, who gives the doses, medicines, chains, logs,
    # appointments, check-in schedules, and the quiet hours of the refills' recipients, the
    # users who opted in to a morning summary
    assert reads(many) == reads(few) == 12
    planned = sum(n for kind, n in counts.items() if kind != "patients")
    assert len(many) - reads(many) <= planned // 500 + 1  # one INSERT per 500 rows
    # Managed patients: the dose, its follow-up, the alerts and the refills go to the
    # managing caregiver, who gives the doses.
    assert counts["refill"] == 57 * 3 and counts["missed_dose_alert"] >= 57 * 3
    assert counts["dose"] >= 57 * 3 and counts["dose_followup"] >= 57 * 3
    assert plan(db.session(), clock.at) == {"patients": 62}


def test_a_new_zone_moves_the_pending_reminders(ctx: Flask, api: Api, world: World) -> None:
    add_med(api, world)
    r = api.patch("/me", as_="maria", json={"time_zone": "America/New_York"})
    assert r.status_code == 200
    pending = [x for x in rows(kind="dose") if x.state == "pending"]
    assert [x.due_at for x in pending] == [NOON]
    r = api.patch("/me", as_="maria", json={"time_zone": "America/Chicago"})
    assert r.status_code == 200
    pending = [x for x in rows(kind="dose") if x.state == "pending"]
    assert [x.due_at for x in pending] == [NOON + timedelta(hours=1)]


def test_snooze_moves_the_reminder_and_its_follow_ups(
    ctx: Flask, api: Api, world: World, clock: Clock
) -> None:
    api.patch("/me", as_="maria", json={"time_zone": "America/New_York"})
    add_med(api, world)
    dose = rows(kind="dose")[0]
    dose.state, dose.sent_at = "sent", NOON
    db.session.commit()
    clock.at = NOON + timedelta(minutes=2)
    assert_error(api.post(f"/me/reminders/{dose.id}/snooze", as_="ana", json={"minutes": 10}), 404)
    bad = api.post(f"/me/reminders/{dose.id}/snooze", as_="maria", json={"minutes": 90})
    assert_error(bad, 422)
    r = api.post(f"/me/reminders/{dose.id}/snooze", as_="maria", json={"minutes": 10})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] != dose.id and r.get_json()["state"] == "pending"
    follow = rows(kind="dose_followup")[0]
    alert = rows(kind="missed_dose_alert")[0]
    assert follow.due_at == NOON + timedelta(minutes=42)
    assert alert.due_at == NOON + timedelta(minutes=72)
    r = api.post(f"/me/reminders/{alert.id}/snooze", as_="ana", json={"minutes": 10})
    assert_error(r, 409)


def test_opened_is_recorded_once_and_only_by_the_recipient(
    ctx: Flask, api: Api, world: World, clock: Clock
) -> None:
    add_med(api, world)
    dose = rows(kind="dose")[0]
    assert_error(api.post(f"/me/reminders/{dose.id}/opened", as_="ana"), 404)
    assert_error(api.post("/me/reminders/99999/opened", as_="maria"), 404)
    first = api.post(f"/me/reminders/{dose.id}/opened", as_="maria").get_json()["opened_at"]
    clock.advance(minutes=5)
    again = api.post(f"/me/reminders/{dose.id}/opened", as_="maria").get_json()["opened_at"]
    assert first == again == START.isoformat()


def test_the_escalation_chain_is_validated_and_shown(ctx: Flask, api: Api, world: World) -> None:
    path = f"/patients/{world.maria}/escalation"
    shown = api.get(path, as_="ana").get_json()
    assert shown["is_default"] is True and [s["notify"] for s in shown["steps"]] == [
        "patient",
        "caregivers",
    ]
    priya = world.users["priya"].id
    r = api.put(
        path,
        as_="maria",
        json={"steps": [{"after_minutes": 20, "notify": "caregiver", "user_id": priya}]},
    )
    assert_error(r, 422)  # priya is on the team, not a caregiver with alerts
    r = api.put(
        path,
        as_="maria",
        json={
            "steps": [
                {"after_minutes": 40, "notify": "patient"},
                {"after_minutes": 20, "notify": "care_team"},
            ]
        },
    )
    assert_error(r, 422)
    assert_error(api.put(path, as_="ana", json={"steps": []}), 403)
    med = add_med(api, world)
    r = api.put(path, as_="maria", json={"medication_id": med, "steps": []})
    assert r.status_code == 200 and r.get_json()["overrides"] == [
        {"medication_id": med, "steps": []}
    ]
    assert [x.state for x in rows() if x.kind != "dose"] == ["cancelled"] * 2
    r = api.put(path, as_="maria", json={"medication_id": med, "steps": None})
    assert r.get_json()["overrides"] == []
    assert sorted(x.state for x in rows()) == ["pending"] * 3  # revived


def test_the_worker_plans_every_few_minutes(engine: Engine) -> None:
    class Quiet:
        name = "none"

        def send(self, pushes: Any) -> list[Any]:
            return []

    scheduler = build_scheduler(engine, Quiet())  # type: ignore[arg-type]
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs["plan"].trigger.interval == timedelta(minutes=5)


def test_a_snooze_never_brings_a_reminder_or_its_alert_forward(
    ctx: Flask, api: Api, world: World, clock: Clock
) -> None:
    api.patch("/me", as_="maria", json={"time_zone": "America/New_York"})
    add_med(api, world)
    dose = rows(kind="dose")[0]
    alert = rows(kind="missed_dose_alert")[0]
    due, alert_due = dose.due_at, alert.due_at
    clock.at = due - timedelta(hours=2)  # not due for two hours: "in 10 minutes" is earlier
    r = api.post(f"/me/reminders/{dose.id}/snooze", as_="maria", json={"minutes": 10})
    assert "earlier" in assert_error(r, 409)["message"]
    db.session.expire_all()
    assert (rows(kind="dose")[0].due_at, rows(kind="missed_dose_alert")[0].due_at) == (
        due,
        alert_due,
    )
