"""Medicines with FHIR Timing schedules, dose logging, PRN limits, supply and the today view.

The clock starts at 2026-11-25 15:00 UTC = 10:00 in New York (EST, -05:00). Maria's
breakfast is 07:30 and dinner 19:00 (fixtures); Mr. Chen lives in Los Angeles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from backend import db
from tests.conftest import Api, Clock, World, assert_error

BID_WITH_MEALS = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["CM", "CV"]}}
DAILY_8 = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00"]}}


def add_med(api: Api, patient_id: int, who: str = "priya", **fields: Any) -> dict[str, Any]:
    # Taken since the day before, so this morning's dose exists (see test_a_medicine_added_...).
    body = {
        "name": "Metformin",
        "strength": "500 mg",
        "timing": BID_WITH_MEALS,
        "start_date": "2026-11-24",
        **fields,
    }
    r = api.post(f"/patients/{patient_id}/medications", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def log(
    api: Api,
    patient_id: int,
    med_id: int,
    who: str,
    client_id: str,
    taken_at: datetime,
    status: str = "taken",
    **extra: Any,
):  # type: ignore[no-untyped-def]
    return api.post(
        f"/patients/{patient_id}/doses",
        as_=who,
        json={
            "medication_id": med_id,
            "client_id": client_id,
            "status": status,
            "taken_at": taken_at.isoformat(),
            **extra,
        },
    )


def ny(hour: int, minute: int = 0, day: int = 25) -> datetime:
    # New York is UTC-5 in late November
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) + timedelta(hours=5)


def test_bid_with_meals_follows_marias_own_routine(api: Api, world: World) -> None:
    med = add_med(api, world.maria)
    assert med["timing"] == BID_WITH_MEALS  # returned exactly as given
    assert med["home_time_zone"] == "America/New_York" and med["tz_policy"] == "local"
    r = api.get(
        f"/patients/{world.maria}/medications/{med['id']}/schedule"
        f"?from=2026-11-26T00:00:00-05:00&to=2026-11-27T00:00:00-05:00",
        as_="ana",
    )
    assert r.status_code == 200
    assert [(o["local_time"], o["at"]) for o in r.get_json()] == [
        ("07:30", "2026-11-26T12:30:00+00:00"),
        ("19:00", "2026-11-27T00:00:00+00:00"),
    ]


def test_a_timing_we_cannot_follow_is_refused_naming_the_field(api: Api, world: World) -> None:
    bad = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "s"}}
    r = api.post(
        f"/patients/{world.maria}/medications", as_="priya", json={"name": "Odd", "timing": bad}
    )
    body = assert_error(r, 422)
    assert "repeat.periodUnit" in body["errors"]["json"]["timing"]
    assert api.get(f"/patients/{world.maria}/medications", as_="priya").get_json() == []
    r = api.post(f"/patients/{world.maria}/medications", as_="priya", json={"name": "No plan"})
    assert "timing" in assert_error(r, 422)["errors"]["json"]


def test_a_dose_is_matched_to_its_slot_and_a_resend_is_not_a_duplicate(
    api: Api, world: World
) -> None:
    med = add_med(api, world.maria)
    first = log(api, world.maria, med["id"], "maria", "phone-log-0001", ny(7, 40))
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["scheduled_at"] == ny(7, 30).isoformat()
    assert body["late"] is False and body["on_behalf"] is False and body["extra"] is False
    again = log(api, world.maria, med["id"], "maria", "phone-log-0001", ny(7, 40))
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    doses = api.get(f"/patients/{world.maria}/doses", as_="maria").get_json()
    assert len(doses) == 1
    # the same client id for another report is a conflict, not the first record again
    skip = log(api, world.maria, med["id"], "maria", "phone-log-0001", ny(7, 40), "skipped")
    assert skip.status_code == 409 and "client_id" in skip.get_json()["errors"]["json"]
    moved = log(api, world.maria, med["id"], "maria", "phone-log-0001", ny(8, 10))
    assert moved.status_code == 409
    assert len(api.get(f"/patients/{world.maria}/doses", as_="maria").get_json()) == 1


def test_tomorrows_dose_cannot_be_logged_tonight(api: Api, world: World, clock: Clock) -> None:
    med = add_med(api, world.maria)
    clock.advance(hours=11)  # 21:00 in New York
    ahead = log(
        api, world.maria, med["id"], "maria", "ahead-0001", ny(21, 0), slot_key="2026-11-26#CM"
    )
    assert ahead.status_code == 422 and "slot_key" in ahead.get_json()["errors"]["json"]
    tonight = log(
        api, world.maria, med["id"], "maria", "tonight-01", ny(21, 0), slot_key="2026-11-25#CV"
    )
    assert tonight.status_code == 201, tonight.get_json()


def test_a_medicine_added_in_the_evening_has_no_morning_dose_to_miss(
    api: Api, world: World, clock: Clock
) -> None:
    clock.advance(hours=11, minutes=20)  # 21:20 in New York
    med = add_med(api, world.maria, start_date="2026-11-25")  # "from today"
    today = api.get("/me/today", as_="maria").get_json()["patients"][0]
    assert [(d["local_time"], d["status"]) for d in today["doses"]] == []  # 19:00 was before
    r = log(
        api, world.maria, med["id"], "ana", "ana-evening-01", ny(7, 50), slot_key="2026-11-25#CM"
    )
    assert r.status_code == 422 and r.get_json()["errors"]["json"]["slot_key"]
    clock.advance(hours=10)  # 07:20 the next morning: the first dose
    today = api.get("/me/today", as_="maria").get_json()["patients"][0]
    assert [(d["local_time"], d["status"]) for d in today["doses"]] == [
        ("07:30", "due"),
        ("19:00", "upcoming"),
    ]
    window = "?from=2026-11-25T00:00:00Z&to=2026-11-27T00:00:00Z"
    slots = api.get(
        f"/patients/{world.maria}/medications/{med['id']}/schedule{window}", as_="maria"
    ).get_json()
    assert slots[0]["at"] == ny(7, 30, 26).isoformat()


def test_an_offline_log_arrives_hours_later_with_its_real_time(
    api: Api, world: World, clock: Clock
) -> None:
    med = add_med(api, world.maria)
    clock.advance(hours=9)  # 19:00 in New York; the phone was offline since breakfast
    r = log(api, world.maria, med["id"], "ana", "ana-offline-01", ny(7, 50))
    body = r.get_json()
    assert body["scheduled_at"] == ny(7, 30).isoformat()
    assert body["on_behalf"] is True and body["logged_by_user_id"] == world.users["ana"].id


def test_late_and_skipped_doses_are_recorded_as_such(api: Api, world: World) -> None:
    med = add_med(api, world.maria)
    late = log(api, world.maria, med["id"], "maria", "late-000001", ny(9, 45)).get_json()
    assert late["late"] is True and late["scheduled_at"] == ny(7, 30).isoformat()
    # a skip must answer a scheduled dose: none is open near 09:50 (the morning one is taken)
    loose = log(
        api,
        world.maria,
        med["id"],
        "maria",
        "skip-000000",
        ny(9, 50),
        status="skipped",
        skip_reason="Nausea",
    )
    assert "slot_key" in assert_error(loose, 422)["errors"]["json"]
    evening = api.get("/me/today", as_="maria").get_json()["patients"][0]["doses"][1]
    skipped = log(
        api,
        world.maria,
        med["id"],
        "maria",
        "skip-000001",
        ny(9, 50),
        status="skipped",
        skip_reason="Nausea",
        slot_key=evening["slot_key"],
    ).get_json()
    assert skipped["status"] == "skipped" and skipped["scheduled_at"] == ny(19).isoformat()
    assert_error(log(api, world.maria, med["id"], "maria", "future-0001", ny(12)), 422)


def test_as_needed_limits_and_the_next_allowed_time(api: Api, world: World, clock: Clock) -> None:
    med = add_med(
        api,
        world.chen,
        who="david",
        name="Acetaminophen",
        timing=None,
        as_needed=True,
        prn_max_per_24h=2,
        prn_min_interval_minutes=240,
    )
    first = log(api, world.chen, med["id"], "david", "prn-000001", clock.at).get_json()
    assert first["extra"] is True and first["over_limit"] is False
    prn = api.get(f"/patients/{world.chen}/medications/{med['id']}", as_="david").get_json()["prn"]
    assert prn["available_now"] is False
    assert prn["next_allowed_at"] == (clock.at + timedelta(hours=4)).isoformat()
    clock.advance(hours=1)
    too_soon = log(api, world.chen, med["id"], "david", "prn-000002", clock.at).get_json()
    assert too_soon["over_limit"] is True  # recorded all the same
    clock.advance(hours=5)
    third = log(api, world.chen, med["id"], "david", "prn-000003", clock.at).get_json()
    assert third["over_limit"] is True  # a third dose in 24 h is over the maximum of 2


def test_undo_a_mistap_then_correct_with_a_trail(api: Api, world: World, clock: Clock) -> None:
    med = add_med(api, world.maria, quantity_on_hand=60, dose_amount=1)
    assert med["supply"] == {"days_left": 30.0, "needs_refill": False}
    tap = log(api, world.maria, med["id"], "maria", "mistap-0001", ny(9, 55)).get_json()
    after = api.get(f"/patients/{world.maria}/medications/{med['id']}", as_="maria").get_json()
    assert after["quantity_on_hand"] == 59
    assert api.delete(f"/patients/{world.maria}/doses/{tap['id']}", as_="maria").status_code == 204
    back = api.get(f"/patients/{world.maria}/medications/{med['id']}", as_="maria").get_json()
    assert back["quantity_on_hand"] == 60
    real = log(api, world.maria, med["id"], "maria", "real-000001", ny(7, 35)).get_json()
    clock.advance(minutes=11)
    assert_error(api.delete(f"/patients/{world.maria}/doses/{real['id']}", as_="maria"), 409)
    fixed = api.patch(
        f"/patients/{world.maria}/doses/{real['id']}",
        as_="maria",
        json={"status": "skipped", "skip_reason": "Forgot"},
    ).get_json()
    assert fixed["status"] == "skipped"
    assert fixed["corrections"][0]["from"]["status"] == "taken"
    assert fixed["corrections"][0]["by_user_id"] == world.users["maria"].id


def test_refill_is_flagged_by_days_of_supply(api: Api, world: World) -> None:
    med = add_med(api, world.maria, quantity_on_hand=10, refill_threshold_days=7)
    assert med["supply"] == {"days_left": 5.0, "needs_refill": True}


def test_local_policy_follows_the_traveller_and_home_keeps_instants(api: Api, world: World) -> None:
    local = add_med(api, world.maria, name="Vitamin D", timing=DAILY_8)
    insulin = add_med(
        api,
        world.maria,
        name="Insulin glargine",
        timing=DAILY_8,
        time_critical=True,
        tz_policy="home",
    )
    assert api.patch("/me", as_="maria", json={"time_zone": "Europe/London"}).status_code == 200
    window = "?from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z"
    lo = api.get(
        f"/patients/{world.maria}/medications/{local['id']}/schedule{window}", as_="maria"
    ).get_json()
    ho = api.get(
        f"/patients/{world.maria}/medications/{insulin['id']}/schedule{window}", as_="maria"
    ).get_json()
    assert [o["at"] for o in lo] == ["2026-11-27T08:00:00+00:00"]  # 08:00 in London
    assert [o["at"] for o in ho] == ["2026-11-27T13:00:00+00:00"]  # 08:00 in New York


def test_today_shows_each_cared_for_person_in_their_own_zone(
    api: Api, world: World, clock: Clock
) -> None:
    add_med(api, world.maria)
    add_med(api, world.chen, who="david", name="Donepezil", timing=DAILY_8)
    today = api.get("/me/today", as_="maria").get_json()["patients"]
    assert [(p["patient_id"], p["my_role"]) for p in today] == [(world.maria, "self")]
    statuses = [(d["local_time"], d["status"]) for d in today[0]["doses"]]
    assert statuses == [("07:30", "overdue"), ("19:00", "upcoming")]  # it is 10:00 there
    clock.advance(hours=2)
    later = api.get("/me/today", as_="ana").get_json()["patients"][0]
    assert [d["status"] for d in later["doses"]] == ["missed", "upcoming"]
    chen = api.get("/me/today", as_="david").get_json()["patients"][0]
    assert chen["time_zone"] == "America/Los_Angeles" and chen["date"] == "2026-11-25"
    assert [d["at"] for d in chen["doses"]] == ["2026-11-25T16:00:00+00:00"]
    assert api.get("/me/today", as_="sam").get_json()["patients"] == []


def test_a_caregiver_without_view_medications_sees_no_doses(api: Api, world: World) -> None:
    add_med(api, world.maria)
    r = api.post(
        f"/patients/{world.maria}/invitations",
        as_="maria",
        json={"relationship": "neighbour", "permissions": ["view_appointments"]},
    )
    api.post("/invitations/redeem", as_="rosa", json={"code": r.get_json()["code"]})
    day = api.get("/me/today", as_="rosa").get_json()["patients"][0]
    assert day["doses"] is None and day["prn"] is None
    assert_error(api.get(f"/patients/{world.maria}/medications", as_="rosa"), 403)


def test_the_today_view_runs_a_fixed_number_of_queries(api: Api, world: World) -> None:
    statements_seen: list[list[str]] = []

    def count(who: str) -> int:
        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = db.get_engine()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert api.get("/me/today", as_="ana").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        statements_seen.append(statements)
        return len(statements)

    add_med(api, world.maria)
    api.get("/me", as_="ana")  # first sign-in of the hour records last_seen; not counted
    one = count("ana")
    for i in range(4):  # Ana becomes the managing caregiver of four more people
        pid = api.post(
            "/patients", as_="ana", json={"display_name": f"Person {i}", "relationship": "other"}
        ).get_json()["id"]
        add_med(api, pid, who="ana", name=f"Med {i}")
        add_med(api, pid, who="ana", name=f"Other {i}", timing=DAILY_8)
    five = count("ana")
    assert five == one, (one, five, statements_seen)


def test_today_lists_the_days_appointments_and_open_activities(api: Api, world: World) -> None:
    appt = api.post(
        f"/patients/{world.maria}/appointments",
        as_="ana",
        json={
            "title": "Diabetes review",
            "type": "telehealth",
            "video_url": "https://video.example.org/room/42",
            "start": "2026-11-25T14:00:00-05:00",
            "end": "2026-11-25T14:30:00-05:00",
            "preparation_notes": "Have your glucose log ready.",
        },
    )
    assert appt.status_code == 201, appt.get_json()
    api.post(
        f"/patients/{world.maria}/appointments",
        as_="ana",
        json={
            "title": "Eye exam",
            "type": "in_person",
            "location": "Clinic B",
            "start": "2026-11-26T09:00:00-05:00",
            "end": "2026-11-26T09:30:00-05:00",
        },
    )
    plan = api.post(
        f"/patients/{world.maria}/care-plans",
        as_="priya",
        json={
            "title": "Diabetes",
            "activities": [
                {
                    "description": "Walk 20 minutes",
                    "frequency": "daily",
                    "responsible": {"kind": "patient"},
                },
            ],
        },
    )
    assert plan.status_code == 201, plan.get_json()
    day = api.get("/me/today", as_="ana").get_json()["patients"][0]
    assert [a["title"] for a in day["appointments"]] == ["Diabetes review"]
    assert day["appointments"][0]["start"] == "2026-11-25T14:00:00-05:00"
    assert [a["description"] for a in day["activities"]] == ["Walk 20 minutes"]
    tomorrow = api.get("/me/today?date=2026-11-26", as_="ana").get_json()["patients"][0]
    assert [a["title"] for a in tomorrow["appointments"]] == ["Eye exam"]


def test_the_demo_data_gives_a_today_view_worth_looking_at(ctx: Any, clock: Clock) -> None:
    from backend.fixtures import load_fixtures

    loaded = load_fixtures(db.session())
    load_fixtures(db.session())  # twice: nothing doubles
    db.session.commit()
    api = Api(ctx.test_client(), ctx, None)
    maria = loaded["users"]["maria"]
    token = {"Authorization": f"Bearer {api.token(maria.firebase_uid)}"}
    day = api.client.get("/me/today", headers=token).get_json()["patients"][0]
    names = {d["name"] for d in day["doses"]}
    assert {"Metformin", "Insulin glargine", "Lisinopril"} <= names
    assert [p["name"] for p in day["prn"]] == ["Acetaminophen"]
    assert [a["title"] for a in day["appointments"]] == ["Diabetes check-up (video)"]
    assert len(day["activities"]) >= 2
    ana = loaded["users"]["ana"]
    token = {"Authorization": f"Bearer {api.token(ana.firebase_uid)}"}
    ana_day = api.client.get("/me/today", headers=token).get_json()["patients"]
    assert [p["display_name"] for p in ana_day] == ["María García"]
