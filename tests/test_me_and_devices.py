"""The signed-in person's profile and their push devices."""

from __future__ import annotations

from sqlalchemy import func, select

from backend import db
from backend.models import Device
from tests.conftest import Api, World, assert_error

TOKEN_A = "fcm-token-" + "a" * 140
TOKEN_B = "fcm-token-" + "b" * 140


def test_first_call_provisions_the_user_from_the_token(api: Api) -> None:
    r = api.get("/me", as_="newcomer-uid")
    assert r.status_code == 200
    body = r.get_json()
    assert body["email"] == "newcomer-uid@example.org"
    assert body["display_name"] == "Newcomer-Uid"
    assert body["language"] == "en" and body["time_zone"] == "UTC"
    again = api.get("/me", as_="newcomer-uid").get_json()
    assert again["id"] == body["id"]


def test_maria_sets_routine_in_spanish_and_it_reaches_her_patient_record(
    api: Api, world: World
) -> None:
    r = api.patch(
        "/me",
        as_="maria",
        json={
            "language": "es-MX",
            "time_zone": "America/Chicago",
            "breakfast_time": "06:45",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "need_flags": ["needs_interpreter", "large_text"],
        },
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["breakfast_time"] == "06:45"
    record = api.get(f"/patients/{world.maria}", as_="maria").get_json()
    assert record["time_zone"] == "America/Chicago"
    assert record["breakfast_time"] == "06:45"
    assert record["language"] == "es-MX"


def test_bad_profile_values_are_refused_and_change_nothing(api: Api) -> None:
    before = api.get("/me", as_="maria").get_json()
    for bad in (
        {"time_zone": "Mars/Olympus_Mons"},
        {"language": "fr"},
        {"language": "not a tag"},
        {"breakfast_time": "25:00"},
        {"quiet_hours_start": "22:00"},
        {"need_flags": ["telepathy"]},
        {"id": 99},
        {"surprise": True},
    ):
        body = assert_error(api.patch("/me", as_="maria", json=bad), 422)
        assert body["errors"], bad
    assert api.get("/me", as_="maria").get_json() == before


def test_a_device_registers_refreshes_and_never_duplicates(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    payload = {
        "fcm_token": TOKEN_A,
        "platform": "android",
        "app_version": "1.2.0",
        "locale": "es-US",
        "notifications_enabled": True,
    }
    first = api.put("/me/devices/install-0001", as_="maria", json=payload)
    assert first.status_code == 200
    clock.advance(hours=5)
    payload["fcm_token"] = TOKEN_B  # FCM rotated the token
    second = api.put("/me/devices/install-0001", as_="maria", json=payload).get_json()
    assert second["last_seen_at"] > first.get_json()["last_seen_at"]
    devices = api.get("/me/devices", as_="maria").get_json()
    assert len(devices) == 1 and devices[0]["installation_id"] == "install-0001"
    assert "fcm_token" not in devices[0]


def test_a_token_moves_to_whoever_registers_it_last(api: Api) -> None:
    payload = {"fcm_token": TOKEN_A, "platform": "ios", "notifications_enabled": True}
    api.put("/me/devices/shared-phone-1", as_="maria", json=payload)
    api.put("/me/devices/shared-phone-1", as_="ana", json=payload)  # Ana signs in on it
    assert api.get("/me/devices", as_="maria").get_json() == []
    assert len(api.get("/me/devices", as_="ana").get_json()) == 1
    count = db.session.scalar(select(func.count()).select_from(Device))
    assert count == 1


def test_deleting_a_device_stops_pushes_to_it(api: Api) -> None:
    payload = {"fcm_token": TOKEN_A, "platform": "android", "notifications_enabled": False}
    api.put("/me/devices/install-0002", as_="ana", json=payload)
    assert api.delete("/me/devices/install-0002", as_="ana").status_code == 204
    assert_error(api.delete("/me/devices/install-0002", as_="ana"), 404)
    assert api.get("/me/devices", as_="ana").get_json() == []


def test_device_input_is_validated(api: Api) -> None:
    assert_error(
        api.put(
            "/me/devices/x",
            as_="ana",
            json={"fcm_token": TOKEN_A, "platform": "android", "notifications_enabled": True},
        ),
        422,
    )
    assert_error(
        api.put(
            "/me/devices/install-0003",
            as_="ana",
            json={"fcm_token": "short", "platform": "nokia", "notifications_enabled": True},
        ),
        422,
    )
    assert api.get("/me/devices", as_="ana").get_json() == []


def test_my_permissions_are_one_answer_on_every_route(api: Api, world: World) -> None:
    own = api.get("/me/patient", as_="maria").get_json()["my_permissions"]
    record = api.get(f"/patients/{world.maria}", as_="maria").get_json()["my_permissions"]
    listed = api.get("/patients", as_="maria").get_json()
    assert own == record == next(p for p in listed if p["id"] == world.maria)["my_permissions"]
    # what it says is what the routes do: the care team schedules check-ins, not the patient
    assert "manage_checkins" not in own and "manage_medications" in own
