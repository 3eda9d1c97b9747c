"""Check-in schedules: scheduling through the API, prompts through the reminder pipeline
(planner -> outbox -> dispatcher -> real firebase-admin -> local FCM), occurrences and their
status, the today view and the ``checkin_overdue`` worklist rule. SQLite and
(TEST_DATABASE_URL) PostgreSQL; the injected clock moves time, nothing sleeps.

The clock starts on Wednesday 2026-11-25 15:00 UTC: 10:00 in New York (María), 07:00 in Los
Angeles (Mr. Chen).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import CaregiverGrant, Patient, Reminder, User, WorkItem, WorkItemEvent
from backend.reminders.planner import plan
from backend.services.checkin_schedules import schedule_checkin
from backend.services.sweep import run_sweep
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from tests.conftest import START, Api, Clock, World, assert_error
from tests.fcmserver import FcmServer
from tests.wiring import WIRED, dispatch_until

DAILY_1030 = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:30"]}}
# 10:30 in New York on the first two days (EST, UTC-5)
DUE_1 = datetime.fromisoformat("2026-11-25T15:30:00+00:00")
DUE_2 = datetime.fromisoformat("2026-11-26T15:30:00+00:00")
PHQ2_ANSWERS = {"template": "PHQ-2", "answers": {"44250-9": 0, "44255-8": 1}}


@pytest.fixture
def people(api: Api, world: World) -> World:
    session = db.session()
    for who in ("maria", "david", "priya"):
        register_device(session, world.users[who].id, f"inst-{who}", f"{who}-phone", "android")
    patient = session.get(Patient, world.maria)
    assert patient is not None
    patient.time_zone = "America/New_York"
    session.commit()
    return world


def schedules(world: World, patient: str = "maria") -> str:
    return f"/patients/{getattr(world, patient)}/checkin-schedules"


def create(api: Api, world: World, who: str = "priya", patient: str = "maria", **body: Any) -> Any:
    payload = {"template": "PHQ-2", "timing": DAILY_1030, **body}
    r = api.post(schedules(world, patient), as_=who, json=payload)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def prompts(**where: Any) -> list[Reminder]:
    db.session.expire_all()
    stmt = select(Reminder).where(Reminder.kind == "checkin_prompt")
    for key, value in where.items():
        stmt = stmt.where(getattr(Reminder, key) == value)
    return list(db.session.scalars(stmt.order_by(Reminder.due_at, Reminder.id)))


def answer(api: Api, world: World, who: str = "maria") -> int:
    r = api.post(f"/patients/{world.maria}/checkin-responses", as_=who, json=PHQ2_ANSWERS)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def occurrences(api: Api, world: World, schedule_id: int, **query: str) -> list[dict[str, Any]]:
    r = api.get(f"{schedules(world)}/{schedule_id}/occurrences", as_="priya", query_string=query)
    assert r.status_code == 200, r.get_json()
    found: list[dict[str, Any]] = r.get_json()
    return found


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- scheduling and planning ------------------------------------------------------------------


def test_priya_schedules_a_daily_phq2_and_marias_prompts_are_planned_in_her_zone(
    api: Api, people: World
) -> None:
    body = create(api, people, note="Mood follow-up after the medication change")
    assert body["template"] == "PHQ-2"
    assert body["status"] == "active"
    assert body["answer_within"] == "PT24H"
    assert body["home_time_zone"] == "America/New_York"
    assert body["created_by_user_id"] == people.users["priya"].id
    planned = prompts()
    # The 48 h horizon from 10:00 on the 25th: 10:30 on the 25th and on the 26th, New York.
    assert [(p.due_at, p.not_after) for p in planned] == [
        (DUE_1, DUE_1 + timedelta(hours=24)),
        (DUE_2, DUE_2 + timedelta(hours=24)),
    ]
    assert {p.user_id for p in planned} == {people.users["maria"].id}
    assert planned[0].subject["schedule_id"] == body["id"]
    assert planned[0].dedupe_key == f"checkin:{body['id']}:2026-11-25T10:30:{planned[0].user_id}"
    # Planning again, as the worker does every few minutes, creates nothing twice.
    assert plan(db.session()).get("checkin_prompt", 0) == 0
    assert len(prompts()) == 2
    listed = api.get(schedules(people), as_="maria")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.get_json()] == [body["id"]]
    one = api.get(f"{schedules(people)}/{body['id']}", as_="maria")
    assert one.status_code == 200 and one.get_json()["timing"] == DAILY_1030


def test_the_worker_plans_the_next_days_as_time_moves_on(
    api: Api, people: World, clock: Clock
) -> None:
    create(api, people)
    clock.advance(days=1)
    counts = plan(db.session())
    assert counts.get("checkin_prompt") == 1  # 10:30 on the 27th came into the horizon
    assert prompts()[-1].due_at == DUE_2 + timedelta(days=1)


def test_a_weekly_schedule_for_mr_chen_prompts_david(api: Api, people: World) -> None:
    weekly = {
        "repeat": {
            "frequency": 1,
            "period": 1,
            "periodUnit": "wk",
            "dayOfWeek": ["thu"],
            "timeOfDay": ["09:00"],
        }
    }
    body = create(api, people, patient="chen", timing=weekly, template="POST-DISCHARGE")
    planned = prompts()
    # Thursday 09:00 in Los Angeles (PST, UTC-8); Mr. Chen has no login: David is asked.
    assert [(p.user_id, p.due_at) for p in planned] == [
        (people.users["david"].id, instant("2026-11-26T17:00:00+00:00"))
    ]
    assert planned[0].patient_id == people.chen
    r = api.get(f"{schedules(people, 'chen')}/{body['id']}", as_="david")
    assert r.status_code == 200


def test_once_now_and_once_at_an_instant(api: Api, people: World) -> None:
    now_once = create(api, people, timing={"repeat": {"count": 1}}, answer_within="PT4H")
    later = create(api, people, timing={"event": ["2026-11-26T14:00:00-05:00"]})
    by_schedule = {p.subject["schedule_id"]: p for p in prompts()}
    assert by_schedule[now_once["id"]].due_at == START
    assert by_schedule[now_once["id"]].not_after == START + timedelta(hours=4)
    assert by_schedule[later["id"]].due_at == instant("2026-11-26T19:00:00+00:00")
    assert len(prompts()) == 2


def test_the_helper_schedules_post_discharge_days_for_transitions(world: World) -> None:
    session = db.session()
    discharge = START
    days = [discharge + timedelta(days=n) for n in (7, 14, 30)]
    schedule = schedule_checkin(
        session,
        patient_id=world.chen,
        template_code="POST-DISCHARGE",
        timing={"event": [d.isoformat() for d in days]},
        answer_within=timedelta(hours=48),
        expires_at=discharge + timedelta(days=40),
        created_by_user_id=world.users["priya"].id,
        note="After discharge",
    )
    session.commit()
    assert schedule.status == "active" and schedule.note == "After discharge"
    assert prompts() == []  # day 7 is beyond the 48 h horizon
    assert plan(session, START + timedelta(days=6)).get("checkin_prompt") == 1
    assert [(p.due_at, p.user_id) for p in prompts()] == [(days[0], world.users["david"].id)]


def test_a_late_schedule_asks_what_is_still_open_and_never_counts_the_rest_missed(
    engine: Engine, world: World
) -> None:
    session = db.session()
    closed, still_open = START - timedelta(days=3), START - timedelta(hours=36)
    schedule = schedule_checkin(
        session,
        patient_id=world.chen,
        template_code="POST-DISCHARGE",
        timing={"event": [closed.isoformat(), still_open.isoformat()]},
        answer_within=timedelta(hours=48),
        expires_at=None,
        created_by_user_id=world.users["priya"].id,
    )
    session.commit()
    assert [(p.due_at, p.not_after) for p in prompts()] == [
        (START, still_open + timedelta(hours=48))
    ]
    assert [p.user_id for p in prompts()] == [world.users["david"].id]
    swept(engine, START + timedelta(days=2))
    (item,) = _overdue_items(world.chen)
    assert item.detail["occurrences_missed"] == 1
    assert item.detail["due_at"] == still_open.isoformat()
    assert item.key == f"checkin_overdue:{schedule.id}"


def test_expiry_stops_planning(api: Api, people: World, clock: Clock) -> None:
    body = create(api, people, expires_at=(START + timedelta(hours=20)).isoformat())
    assert [p.due_at for p in prompts()] == [DUE_1]
    clock.advance(days=2)
    assert plan(db.session()).get("checkin_prompt", 0) == 0
    r = api.get(f"{schedules(people)}/{body['id']}", as_="priya")
    assert r.get_json()["status"] == "expired"
    for status, expected in (("expired", [body["id"]]), ("active", []), ("cancelled", [])):
        r = api.get(schedules(people), as_="priya", query_string={"status": status})
        assert [s["id"] for s in r.get_json()] == expected, status


def test_cancel_cancels_pending_prompts(api: Api, people: World, clock: Clock) -> None:
    body = create(api, people)
    r = api.post(f"{schedules(people)}/{body['id']}/cancel", as_="priya")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "cancelled"
    assert r.get_json()["cancelled_by_user_id"] == people.users["priya"].id
    assert {(p.state, p.cancelled_reason) for p in prompts()} == {
        ("cancelled", "schedule_cancelled")
    }
    assert plan(db.session()).get("checkin_prompt", 0) == 0
    assert [o["status"] for o in occurrences(api, people, body["id"])] == [
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    again = api.post(f"{schedules(people)}/{body['id']}/cancel", as_="priya")
    assert again.status_code == 200
    assert again.get_json()["cancelled_by_user_id"] == people.users["priya"].id


# -- access ------------------------------------------------------------------------------------


def test_who_may_see_and_schedule(api: Api, people: World) -> None:
    body = create(api, people)
    one = f"{schedules(people)}/{body['id']}"
    # Ana cares for María but was not given view_checkins.
    assert_error(api.get(schedules(people), as_="ana"), 403)
    assert_error(api.get(one, as_="ana"), 403)
    assert_error(
        api.post(schedules(people), as_="ana", json={"template": "PHQ-2", "timing": DAILY_1030}),
        403,
    )
    for stranger in ("omar", "sam"):
        for r in (
            api.get(schedules(people), as_=stranger),
            api.get(one, as_=stranger),
            api.get(f"{one}/occurrences", as_=stranger),
            api.post(f"{one}/cancel", as_=stranger),
        ):
            assert assert_error(r, 404)["message"] == "No such patient."
    # A schedule of one patient is not reachable under another.
    assert_error(api.get(f"{schedules(people, 'chen')}/{body['id']}", as_="priya"), 404)
    # Scheduling is the care team's: the patient reads her schedules but does not set them.
    forbidden = {"template": "GAD-7", "timing": DAILY_1030}
    assert_error(api.post(schedules(people), as_="maria", json=forbidden), 403)
    assert_error(api.post(f"{one}/cancel", as_="maria"), 403)
    assert api.get(one, as_="maria").get_json()["status"] == "active"


def test_schedules_of_answers_kept_from_caregivers_are_kept_from_them_too(
    api: Api, people: World
) -> None:
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == people.users["ana"].id)
    ).one()
    grant.permissions = [*grant.permissions, "view_checkins"]
    db.session.commit()
    social = create(api, people, template="SOCIAL-NEEDS", timing={"repeat": {"count": 1}})
    mood = create(api, people)
    listed = api.get(schedules(people), as_="ana")
    assert [s["id"] for s in listed.get_json()] == [mood["id"]]
    assert_error(api.get(f"{schedules(people)}/{social['id']}", as_="ana"), 404)
    assert_error(api.get(f"{schedules(people)}/{social['id']}/occurrences", as_="ana"), 404)
    day = next(
        d
        for d in api.get("/me/today", as_="ana").get_json()["patients"]
        if d["patient_id"] == people.maria
    )
    assert [c["schedule_id"] for c in day["checkins"]] == [mood["id"]]
    mine = api.get("/me/today", as_="maria").get_json()["patients"][0]
    assert {c["schedule_id"] for c in mine["checkins"]} == {social["id"], mood["id"]}


def test_bad_input_is_a_422_naming_the_field(api: Api, people: World) -> None:
    url = schedules(people)

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        payload = {"template": "PHQ-2", "timing": DAILY_1030, **body}
        errors: dict[str, Any] = assert_error(api.post(url, as_="priya", json=payload), 422)
        return errors["errors"]["json"]

    bad_unit = {"repeat": {"frequency": 1, "period": 5, "periodUnit": "min"}}
    assert "repeat.periodUnit" in refused({"timing": bad_unit})["timing"]
    assert "timing" in refused({"timing": "daily"})
    assert "timing" in refused({"timing": None})
    assert "template" in refused({"template": "NOPE-1"})
    # Mr. Chen has no login, and a caregiver may not answer a screener for him.
    r = api.post(
        schedules(people, "chen"), as_="priya", json={"template": "PHQ-9", "timing": DAILY_1030}
    )
    assert "template" in assert_error(r, 422)["errors"]["json"]
    assert "answer_within" in refused({"answer_within": "PT5M"})
    assert "answer_within" in refused({"answer_within": "P30D"})
    assert "answer_within" in refused({"answer_within": "24 hours"})
    assert "expires_at" in refused({"expires_at": (START - timedelta(hours=1)).isoformat()})
    assert "expires_at" in refused({"expires_at": "2026-12-01T10:00:00"})  # no offset
    assert "tz_policy" in refused({"tz_policy": "mars"})
    assert "surprise" in refused({"surprise": 1})
    r = api.get(f"{url}/1/occurrences", as_="priya")
    assert_error(r, 404)
    body = create(api, people)
    window = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-15T00:00:00Z"}
    r = api.get(f"{url}/{body['id']}/occurrences", as_="priya", query_string=window)
    assert "to" in assert_error(r, 422)["errors"]["query"]
    assert prompts(state="pending")  # the good one is planned; none of the refused


# -- answering ---------------------------------------------------------------------------------


def test_answering_removes_the_pending_prompt_and_the_occurrence_shows_answered(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    api: Api,
    people: World,
    clock: Clock,
) -> None:
    body = create(api, people)
    clock.at = DUE_1 - timedelta(minutes=20)  # inside [due - 1 h, due + 24 h]
    response_id = answer(api, people)
    dispatch_until(engine, channel, clock, DUE_1 + timedelta(minutes=5))
    assert fcm.received == []
    first, second = prompts()
    assert (first.state, first.cancelled_reason) == ("cancelled", "checkin_answered")
    assert second.state == "pending"
    found = occurrences(api, people, body["id"], to="2026-11-28T00:00:00Z")
    assert [(o["due_at"], o["status"], o["response_id"]) for o in found] == [
        ("2026-11-25T15:30:00+00:00", "answered", response_id),
        ("2026-11-26T15:30:00+00:00", "upcoming", None),
        ("2026-11-27T15:30:00+00:00", "upcoming", None),
    ]
    clock.at = DUE_2 + timedelta(hours=1)
    assert [o["status"] for o in occurrences(api, people, body["id"])][:3] == [
        "answered",
        "due",
        "upcoming",
    ]
    clock.at = DUE_2 + timedelta(hours=25)
    statuses = {o["due_at"]: o["status"] for o in occurrences(api, people, body["id"])}
    assert statuses["2026-11-26T15:30:00+00:00"] == "overdue"


def test_an_answer_cancels_the_prompt_it_answers_in_the_same_request(
    api: Api, people: World, clock: Clock
) -> None:
    create(api, people)
    first, second = prompts()
    assert (first.due_at, first.state, second.state) == (DUE_1, "pending", "pending")
    clock.at = DUE_1 - timedelta(minutes=5)  # the prompt is due in 5 minutes
    response_id = answer(api, people)
    # Right after the POST, no dispatcher involved: that occurrence's prompt is cancelled.
    first, second = prompts()
    assert (first.state, first.cancelled_reason) == ("cancelled", "checkin_answered")
    assert (second.state, second.cancelled_reason) == ("pending", None)
    # The same occurrence is the one the schedule's own view says was answered.
    r = api.get(f"/patients/{people.maria}/checkin-schedules", as_="priya")
    schedule_id = r.get_json()[0]["id"]
    found = occurrences(api, people, schedule_id, to="2026-11-26T00:00:00Z")
    assert [(o["due_at"], o["status"], o["response_id"]) for o in found] == [
        ("2026-11-25T15:30:00+00:00", "answered", response_id)
    ]
    # A second answer the same morning answers nothing open: tomorrow's prompt stays.
    clock.at = DUE_1 + timedelta(minutes=10)
    answer(api, people)
    assert [p.state for p in prompts()] == ["cancelled", "pending"]


def test_an_answer_outside_every_window_cancels_nothing(
    api: Api, people: World, clock: Clock
) -> None:
    # Windows [due - 1 h, due + 4 h]: 09:30-14:30 in New York each day.
    create(api, people, answer_within="PT4H")
    clock.at = DUE_1 + timedelta(hours=5)  # 15:30 on the 25th: after the first window
    answer(api, people)
    assert [(p.due_at, p.state) for p in prompts()] == [(DUE_1, "pending"), (DUE_2, "pending")]
    clock.at = DUE_2 - timedelta(hours=2)  # 08:30 on the 26th: before the second one
    answer(api, people)
    assert [p.state for p in prompts()] == ["pending", "pending"]
    clock.at = DUE_2 - timedelta(minutes=30)  # inside it
    answer(api, people)
    assert [(p.due_at, p.state, p.cancelled_reason) for p in prompts()] == [
        (DUE_1, "pending", None),
        (DUE_2, "cancelled", "checkin_answered"),
    ]


def test_an_answer_david_gives_for_mr_chen_cancels_the_prompt_to_him(
    api: Api, people: World, clock: Clock
) -> None:
    body = create(api, people, patient="chen", template="POST-DISCHARGE", timing=DAILY_1030)
    planned = prompts(patient_id=people.chen)
    assert {p.user_id for p in planned} == {people.users["david"].id}
    clock.at = planned[0].due_at - timedelta(minutes=10)
    r = api.post(
        f"/patients/{people.chen}/checkin-responses",
        as_="david",
        json={"template": "POST-DISCHARGE", "answers": {"er_visit": False}},
    )
    assert r.status_code == 201, r.get_json()
    first, *rest = prompts(patient_id=people.chen)
    assert (first.state, first.cancelled_reason) == ("cancelled", "checkin_answered")
    assert all(p.state == "pending" for p in rest)
    assert body["id"] == first.subject["schedule_id"]


def test_the_prompt_reaches_maria_in_spanish_and_says_nothing_clinical(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    api: Api,
    people: World,
    clock: Clock,
) -> None:
    create(api, people, template="PHQ-9")
    create(api, people, patient="chen", template="POST-DISCHARGE", timing={"repeat": {"count": 1}})
    dispatch_until(engine, channel, clock, DUE_1, WIRED)
    (to_maria,) = fcm.to("maria-phone")
    assert to_maria["notification"] == {
        "title": "Control de seguimiento",
        "body": "Su equipo de atención tiene unas preguntas para usted",
    }
    (to_david,) = fcm.to("david-phone")
    assert to_david["notification"] == {
        "title": "Check-in",
        "body": "A check-in for Wei is waiting",
    }
    for message in fcm.received:
        assert message["data"]["kind"] == "checkin_prompt"
        assert "PHQ" not in str(message) and "GAD" not in str(message)
    assert {p.state for p in prompts() if p.due_at <= DUE_1} == {"sent"}


def test_a_caregiver_who_lost_access_is_not_prompted(
    ctx: Flask,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
    api: Api,
    people: World,
    clock: Clock,
) -> None:
    create(
        api,
        people,
        patient="chen",
        template="POST-DISCHARGE",
        timing={"repeat": {"count": 1}},
        starts_at=(START + timedelta(hours=1)).isoformat(),
    )
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.patient_id == people.chen)
    ).one()
    grant.ends_at = START + timedelta(minutes=30)
    db.session.commit()
    dispatch_until(engine, channel, clock, START + timedelta(hours=1, minutes=5))
    assert fcm.received == []
    assert [(p.state, p.cancelled_reason) for p in prompts()] == [("cancelled", "access_revoked")]


# -- quiet hours --------------------------------------------------------------------------------


def test_a_prompt_waits_for_the_end_of_quiet_hours_but_not_past_its_window(
    api: Api, people: World
) -> None:
    maria = db.session.get(User, people.users["maria"].id)
    assert maria is not None
    maria.quiet_hours_start, maria.quiet_hours_end = time(22, 0), time(8, 0)
    db.session.commit()
    early = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["06:00"]}}
    waits = create(api, people, timing=early, answer_within="PT12H")
    dropped = create(api, people, timing=early, answer_within="PT1H", template="GAD-7")
    rows = prompts()
    # 06:00 New York on the 26th and 27th move to 08:00 (13:00 UTC), still inside 12 h.
    assert [(p.subject["schedule_id"], p.due_at) for p in rows] == [
        (waits["id"], instant("2026-11-26T13:00:00+00:00")),
        (waits["id"], instant("2026-11-27T13:00:00+00:00")),
    ]
    assert all(p.subject["schedule_id"] != dropped["id"] for p in rows)


# -- the today view -----------------------------------------------------------------------------


def test_today_lists_the_days_check_ins_for_those_who_may_see_them(
    api: Api, people: World, clock: Clock
) -> None:
    body = create(api, people)
    clock.at = DUE_1 + timedelta(minutes=5)
    response_id = answer(api, people)
    day = api.get("/me/today", as_="maria").get_json()["patients"][0]
    assert day["checkins"] == [
        {
            "schedule_id": body["id"],
            "template": "PHQ-2",
            "template_organization_id": None,
            "due_at": "2026-11-25T15:30:00+00:00",
            "answer_by": "2026-11-26T15:30:00+00:00",
            "status": "answered",
            "response_id": response_id,
        }
    ]
    tomorrow = api.get("/me/today", as_="maria", query_string={"date": "2026-11-26"})
    assert [c["status"] for c in tomorrow.get_json()["patients"][0]["checkins"]] == ["upcoming"]
    ana_view = api.get("/me/today", as_="ana").get_json()["patients"]
    assert [d["checkins"] for d in ana_view if d["patient_id"] == people.maria] == [None]


# -- the worklist rule ----------------------------------------------------------------------------


def swept(engine: Engine, at: datetime) -> None:
    """The worker's sweep job (its own transactions), after this session's work is in."""
    db.session.commit()
    run_sweep(engine, at)
    db.session.expire_all()


def _overdue_items(patient_id: int) -> list[WorkItem]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(WorkItem)
            .where(WorkItem.patient_id == patient_id, WorkItem.kind == "checkin_overdue")
            .order_by(WorkItem.id)
        )
    )


def test_an_unanswered_prompt_opens_a_worklist_item_and_the_next_answer_resolves_it(
    engine: Engine, api: Api, people: World, clock: Clock
) -> None:
    body = create(api, people, template="PHQ-9", answer_within="PT2H")
    clock.at = DUE_1 + timedelta(hours=2)  # the window closes at 17:30 UTC, inclusive
    swept(engine, clock.at)
    assert _overdue_items(people.maria) == []
    clock.at = DUE_1 + timedelta(hours=2, minutes=1)
    swept(engine, clock.at)
    (item,) = _overdue_items(people.maria)
    assert item.key == f"checkin_overdue:{body['id']}"
    assert item.status == "open" and not item.urgent
    assert item.title == "PHQ-9 check-in not answered (due 25 Nov)"
    assert item.detail == {
        "schedule_id": body["id"],
        "template": "PHQ-9",
        "template_organization_id": None,
        "due_at": "2026-11-25T15:30:00+00:00",
        "occurrences_missed": 1,
    }
    assert item.evidence_at == DUE_1 + timedelta(hours=2)
    # Sweeping again changes nothing.
    swept(engine, clock.at + timedelta(minutes=5))
    assert len(_overdue_items(people.maria)) == 1
    # María answers the next day's prompt: the newest is answered, the item is resolved.
    clock.at = DUE_2 + timedelta(minutes=10)
    r = api.post(
        f"/patients/{people.maria}/checkin-responses",
        as_="maria",
        json={"template": "PHQ-9", "answers": {k: 0 for k in PHQ9_ITEMS}},
    )
    assert r.status_code == 201, r.get_json()
    swept(engine, clock.at)
    (item,) = _overdue_items(people.maria)
    assert item.status == "resolved" and item.resolved_by_user_id is None
    trail = db.session.scalars(
        select(WorkItemEvent.action).where(WorkItemEvent.work_item_id == item.id)
    ).all()
    assert list(trail) == ["opened", "resolved"]


def test_missed_prompts_are_counted_and_cancelling_the_schedule_closes_the_item(
    engine: Engine, api: Api, people: World, clock: Clock
) -> None:
    body = create(api, people, answer_within="PT1H")
    clock.at = DUE_2 + timedelta(hours=3)
    swept(engine, clock.at)
    (item,) = _overdue_items(people.maria)
    assert item.detail["occurrences_missed"] == 2
    assert item.title == "PHQ-2 check-in not answered (due 26 Nov)"
    assert api.post(f"{schedules(people)}/{body['id']}/cancel", as_="priya").status_code == 200
    (item,) = _overdue_items(people.maria)
    assert item.status == "resolved"
    swept(engine, clock.at + timedelta(days=1))
    assert [i.status for i in _overdue_items(people.maria)] == ["resolved"]


PHQ9_ITEMS = (
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
)
