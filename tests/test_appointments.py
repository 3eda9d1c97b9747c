"""Appointments: booking in the patient's zone, reschedule with history, cancel, outcomes,
who may book and who may go along, and input that is refused without storing anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend import db
from backend.errors import ServiceError
from backend.models import Appointment, AppointmentEvent, CaregiverGrant, User
from backend.services import appointments as service
from tests.conftest import Api, Clock, World, assert_error

# The tests' clock starts 2026-11-25T15:00Z (10:00 in New York, after the fall-back).
TELEHEALTH = {
    "title": "Endocrinology follow-up",
    "type": "telehealth",
    "provider_name": "Dr. Lucía Ortega",
    "video_url": "https://visit.example.org/room/4821",
    "start": "2026-12-03T09:00:00-05:00",
    "end": "2026-12-03T09:30:00-05:00",
    "preparation_notes": "Fasting from midnight; water is fine. Have the glucose log ready.",
}


def book(api: Api, patient_id: int, who: str = "ana", **fields: Any) -> dict[str, Any]:
    r = api.post(f"/patients/{patient_id}/appointments", as_=who, json={**TELEHEALTH, **fields})
    assert r.status_code == 201, r.get_json()
    return r.get_json()  # type: ignore[no-any-return]


def url(patient_id: int, appointment_id: int, tail: str = "") -> str:
    return f"/patients/{patient_id}/appointments/{appointment_id}{tail}"


def history(api: Api, patient_id: int, appointment_id: int, who: str = "maria") -> list[Any]:
    r = api.get(url(patient_id, appointment_id, "/history"), as_=who)
    assert r.status_code == 200, r.get_json()
    return r.get_json()  # type: ignore[no-any-return]


def stored() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Appointment)) or 0,
        db.session.scalar(select(func.count()).select_from(AppointmentEvent)) or 0,
    )


def test_ana_books_a_telehealth_visit_for_her_mother_with_fasting_notes(
    api: Api, world: World
) -> None:
    booked = book(api, world.maria)
    assert booked["status"] == "booked"
    assert booked["start"] == "2026-12-03T09:00:00-05:00"
    assert booked["time_zone"] == "America/New_York"  # Maria's own zone
    assert booked["preparation_notes"].startswith("Fasting from midnight")
    assert booked["reminder_lead_minutes"] == [1440, 120]
    assert booked["transport_needed"] is False
    assert booked["created_by_user_id"] == world.users["ana"].id
    seen = api.get(url(world.maria, booked["id"]), as_="maria").get_json()
    assert seen == booked
    [created] = history(api, world.maria, booked["id"])
    assert created["kind"] == "created" and created["by_name"] == "Ana García"
    assert created["to"]["start"] == "2026-12-03T09:00:00-05:00"


def test_times_come_back_with_the_offset_of_the_appointments_zone(api: Api, world: World) -> None:
    sent_in_utc = book(api, world.maria, start="2026-12-03T14:00:00Z", end="2026-12-03T15:00Z")
    assert sent_in_utc["start"] == "2026-12-03T09:00:00-05:00"
    assert sent_in_utc["end"] == "2026-12-03T10:00:00-05:00"
    chen = book(api, world.chen, who="david", start="2026-12-03T14:00:00Z")
    assert chen["time_zone"] == "America/Los_Angeles"
    assert chen["start"] == "2026-12-03T06:00:00-08:00"
    in_chicago = book(api, world.chen, who="david", time_zone="America/Chicago")
    assert in_chicago["start"] == "2026-12-03T08:00:00-06:00"


def test_fall_back_and_spring_forward_change_the_offset_not_the_wall_clock(
    api: Api, world: World, clock: Clock
) -> None:
    clock.at = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    # 09:00 in New York, sent as UTC: 13:00Z in daylight time, 14:00Z after Nov 1.
    before = book(api, world.maria, start="2026-10-30T13:00:00Z", end="2026-10-30T14:00:00Z")
    after = book(api, world.maria, start="2026-11-05T14:00:00Z", end="2026-11-05T15:00:00Z")
    assert before["start"] == "2026-10-30T09:00:00-04:00"
    assert after["start"] == "2026-11-05T09:00:00-05:00"
    spring = book(api, world.maria, start="2027-03-15T13:00:00Z", end="2027-03-15T14:00:00Z")
    assert spring["start"] == "2027-03-15T09:00:00-04:00"
    moved = api.post(
        url(world.maria, after["id"], "/reschedule"),
        as_="ana",
        json={"start": "2026-12-07T14:00:00Z", "end": "2026-12-07T15:00:00Z"},
    ).get_json()
    [_, rescheduled] = history(api, world.maria, after["id"])
    assert rescheduled["from"]["start"] == "2026-11-05T09:00:00-05:00"
    assert moved["start"] == rescheduled["to"]["start"] == "2026-12-07T09:00:00-05:00"


def test_rescheduling_keeps_the_appointment_and_the_old_time_in_its_history(
    api: Api, world: World, clock: Clock
) -> None:
    booked = book(api, world.maria)
    clock.advance(hours=2)
    r = api.post(
        url(world.maria, booked["id"], "/reschedule"),
        as_="ana",
        json={
            "start": "2026-12-10T10:30:00-05:00",
            "end": "2026-12-10T11:00:00-05:00",
            "reason": "Clinic asked to move it.",
        },
    )
    assert r.status_code == 200, r.get_json()
    moved = r.get_json()
    assert moved["id"] == booked["id"] and moved["status"] == "booked"
    assert moved["start"] == "2026-12-10T10:30:00-05:00"
    assert moved["updated_at"] == "2026-11-25T17:00:00+00:00"
    _, rescheduled = history(api, world.maria, booked["id"])
    assert rescheduled["kind"] == "rescheduled"
    assert rescheduled["from"] == {
        "start": "2026-12-03T09:00:00-05:00",
        "end": "2026-12-03T09:30:00-05:00",
        "time_zone": "America/New_York",
    }
    assert rescheduled["to"]["start"] == "2026-12-10T10:30:00-05:00"
    assert rescheduled["reason"] == "Clinic asked to move it."
    assert rescheduled["by_user_id"] == world.users["ana"].id
    same = api.post(
        url(world.maria, booked["id"], "/reschedule"),
        as_="ana",
        json={"start": moved["start"], "end": moved["end"]},
    )
    assert "start" in assert_error(same, 422)["errors"]["json"]


def test_a_cancelled_appointment_stays_cancelled(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    r = api.post(url(world.maria, booked["id"], "/cancel"), as_="ana", json={"reason": "Flu."})
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    again = {"start": "2026-12-04T09:00:00-05:00", "end": "2026-12-04T09:30:00-05:00"}
    assert_error(
        api.post(url(world.maria, booked["id"], "/reschedule"), as_="ana", json=again), 409
    )
    assert_error(api.post(url(world.maria, booked["id"], "/cancel"), as_="ana", json={}), 409)
    patched = api.patch(url(world.maria, booked["id"]), as_="ana", json={"title": "Renamed"})
    assert_error(patched, 409)
    kinds = [(e["kind"], e["to"], e["reason"]) for e in history(api, world.maria, booked["id"])]
    assert kinds[1:] == [("cancelled", {"status": "cancelled"}, "Flu.")]
    listed = api.get(f"/patients/{world.maria}/appointments?status=cancelled", as_="maria")
    assert [a["id"] for a in listed.get_json()] == [booked["id"]]


def test_cancel_needs_no_body(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    r = api.post(url(world.maria, booked["id"], "/cancel"), as_="maria")
    assert r.status_code == 200, r.get_json()
    assert history(api, world.maria, booked["id"])[-1]["reason"] is None


def test_the_outcome_is_recorded_only_once_it_has_started(
    api: Api, world: World, clock: Clock
) -> None:
    booked = book(api, world.maria)
    path = url(world.maria, booked["id"])
    assert_error(api.patch(path, as_="ana", json={"status": "completed"}), 409)
    assert_error(api.patch(path, as_="ana", json={"status": "cancelled"}), 422)
    clock.at = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    done = api.patch(path, as_="ana", json={"status": "completed"})
    assert done.status_code == 200 and done.get_json()["status"] == "completed"
    corrected = api.patch(path, as_="priya", json={"status": "no_show"})
    assert corrected.get_json()["status"] == "no_show"
    later = {"start": "2026-12-05T09:00:00-05:00", "end": "2026-12-05T09:30:00-05:00"}
    assert_error(api.post(f"{path}/reschedule", as_="ana", json=later), 409)
    statuses = [(e["kind"], e["from"], e["to"]) for e in history(api, world.maria, booked["id"])]
    assert statuses[1:] == [
        ("status", {"status": "booked"}, {"status": "completed"}),
        ("status", {"status": "completed"}, {"status": "no_show"}),
    ]


def test_a_completed_appointment_cannot_be_rescheduled(
    api: Api, world: World, clock: Clock
) -> None:
    booked = book(api, world.maria)
    clock.at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    api.patch(url(world.maria, booked["id"]), as_="ana", json={"status": "completed"})
    later = {"start": "2026-12-05T09:00:00-05:00", "end": "2026-12-05T09:30:00-05:00"}
    r = api.post(url(world.maria, booked["id"], "/reschedule"), as_="ana", json=later)
    assert "completed" in assert_error(r, 409)["message"]


def test_an_edit_records_only_what_changed(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    path = url(world.maria, booked["id"])
    r = api.patch(
        path,
        as_="priya",
        json={"transport_needed": True, "title": booked["title"], "reminder_lead_minutes": [30]},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["transport_needed"] is True
    assert r.get_json()["updated_by_user_id"] == world.users["priya"].id
    edited = history(api, world.maria, booked["id"])[-1]
    assert edited["kind"] == "edited"
    assert edited["from"] == {"transport_needed": False, "reminder_lead_minutes": [1440, 120]}
    assert edited["to"] == {"transport_needed": True, "reminder_lead_minutes": [30]}
    unchanged = api.patch(path, as_="ana", json={"transport_needed": True})
    assert unchanged.status_code == 200
    assert len(history(api, world.maria, booked["id"])) == 2  # nothing changed, nothing recorded


def test_changing_the_type_needs_a_place_that_fits(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    path = url(world.maria, booked["id"])
    r = api.patch(path, as_="ana", json={"type": "in_person"})
    assert set(assert_error(r, 422)["errors"]["json"]) == {"video_url"}
    r = api.patch(path, as_="ana", json={"type": "in_person", "video_url": None})
    assert set(assert_error(r, 422)["errors"]["json"]) == {"location"}
    r = api.patch(
        path, as_="ana", json={"type": "in_person", "video_url": None, "location": "Clinic B"}
    )
    assert r.status_code == 200 and r.get_json()["location"] == "Clinic B"
    time_change = api.patch(path, as_="ana", json={"start": "2026-12-04T09:00:00-05:00"})
    assert "start" in assert_error(time_change, 422)["errors"]["json"]


def test_a_caregiver_who_may_only_view_appointments_cannot_change_them(
    api: Api, world: World
) -> None:
    booked = book(api, world.maria)
    invited = api.post(
        f"/patients/{world.maria}/invitations",
        as_="maria",
        json={"relationship": "neighbour", "permissions": ["view_appointments"]},
    ).get_json()
    redeemed = api.post("/invitations/redeem", as_="rosa", json={"code": invited["code"]})
    assert redeemed.status_code == 201
    listed = api.get(f"/patients/{world.maria}/appointments", as_="rosa")
    assert [a["id"] for a in listed.get_json()] == [booked["id"]]
    path = url(world.maria, booked["id"])
    later = {"start": "2026-12-05T09:00:00-05:00", "end": "2026-12-05T09:30:00-05:00"}
    for response in (
        api.post(f"/patients/{world.maria}/appointments", as_="rosa", json=TELEHEALTH),
        api.patch(path, as_="rosa", json={"title": "Mine now"}),
        api.post(f"{path}/reschedule", as_="rosa", json=later),
        api.post(f"{path}/cancel", as_="rosa", json={}),
    ):
        assert "manage appointments" in assert_error(response, 403)["message"]
    assert stored() == (1, 1)


def _grant(world: World, uid: str, permissions: list[str]) -> CaregiverGrant:
    user = User(firebase_uid=uid, email=f"{uid}@example.org", display_name=uid.title())
    db.session.add(user)
    db.session.flush()
    grant = CaregiverGrant(
        patient_id=world.maria,
        caregiver_user_id=user.id,
        relationship="friend",
        permissions=permissions,
        granted_by_user_id=world.users["maria"].id,
    )
    db.session.add(grant)
    db.session.commit()
    return grant


def test_the_caregiver_who_goes_along_must_have_access_to_appointments(
    api: Api, world: World
) -> None:
    with_ana = book(api, world.maria, attendee_user_id=world.users["ana"].id)
    assert with_ana["attendee_name"] == "Ana García"
    meds_only = _grant(world, "tomas", ["view_medications"])
    revoked = _grant(world, "rita", ["view_appointments"])
    revoked.end(world.users["maria"].id, "revoked")
    db.session.commit()
    refused = {
        "a stranger": world.users["sam"].id,
        "the nurse (care team, not a caregiver)": world.users["priya"].id,
        "the patient herself": world.users["maria"].id,
        "another patient's caregiver": world.users["david"].id,
        "a caregiver without view_appointments": meds_only.caregiver_user_id,
        "a revoked caregiver": revoked.caregiver_user_id,
        "nobody at all": 999_999,
    }
    for who, user_id in refused.items():
        r = api.post(
            f"/patients/{world.maria}/appointments",
            as_="ana",
            json={**TELEHEALTH, "attendee_user_id": user_id},
        )
        assert "attendee_user_id" in assert_error(r, 422)["errors"]["json"], who
    patched = api.patch(
        url(world.maria, with_ana["id"]),
        as_="ana",
        json={"attendee_user_id": revoked.caregiver_user_id},
    )
    assert_error(patched, 422)
    assert stored() == (1, 1)


def test_a_care_team_provider_must_be_on_this_patients_team(api: Api, world: World) -> None:
    home = {"type": "home_visit", "video_url": None, "title": "Nurse home visit"}
    visit = book(api, world.maria, provider_user_id=world.users["priya"].id, **home)
    assert visit["provider_user_name"] == "Priya Natarajan"
    assert visit["location"] is None  # a home visit is at home
    r = api.post(
        f"/patients/{world.maria}/appointments",
        as_="ana",
        json={**TELEHEALTH, **home, "provider_user_id": world.users["omar"].id},
    )
    assert "provider_user_id" in assert_error(r, 422)["errors"]["json"]
    assert stored() == (1, 1)


BAD_INPUT = {
    "end before start": ({"end": "2026-12-03T08:30:00-05:00"}, "end"),
    "a naive start": ({"start": "2026-12-03T09:00:00"}, "start"),
    "a start in the past": (
        {"start": "2026-11-25T09:00:00-05:00", "end": "2026-11-25T09:30:00-05:00"},
        "start",
    ),
    "longer than a day": ({"end": "2026-12-05T09:30:00-05:00"}, "end"),
    "an unknown type": ({"type": "séance"}, "type"),
    "a lead time of 0": ({"reminder_lead_minutes": [0]}, "reminder_lead_minutes"),
    "a lead time twice": ({"reminder_lead_minutes": [60, 60]}, "reminder_lead_minutes"),
    "six lead times": (
        {"reminder_lead_minutes": [10, 20, 30, 40, 50, 60]},
        "reminder_lead_minutes",
    ),
    "an unknown field": ({"priority": "high"}, "priority"),
    "a plain http video link": ({"video_url": "http://visit.example.org/1"}, "video_url"),
    "a video link in person": ({"type": "in_person", "location": "Clinic"}, "video_url"),
    "a telehealth location": ({"location": "Clinic"}, "location"),
    "a lab without a place": ({"type": "lab", "video_url": None}, "location"),
    "a made-up zone": ({"time_zone": "America/Gotham"}, "time_zone"),
    "no title": ({"title": None}, "title"),
    "a NUL in the notes": ({"preparation_notes": "Fast\x00ing"}, "preparation_notes"),
    "a mistyped year": (
        {"start": "9999-12-31T23:00:00-05:00", "end": "9999-12-31T23:30:00-05:00"},
        "start",
    ),
}


@pytest.mark.parametrize(("fields", "field"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_refused_and_nothing_is_stored(
    api: Api, world: World, fields: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**TELEHEALTH, **fields}.items() if v is not None or k != "title"}
    r = api.post(f"/patients/{world.maria}/appointments", as_="ana", json=body)
    assert field in assert_error(r, 422)["errors"]["json"]
    assert stored() == (0, 0)


def test_a_reschedule_into_the_past_or_backwards_is_refused(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    path = url(world.maria, booked["id"], "/reschedule")
    past = {"start": "2026-11-24T09:00:00-05:00", "end": "2026-11-24T09:30:00-05:00"}
    backwards = {"start": "2026-12-04T09:00:00-05:00", "end": "2026-12-04T08:00:00-05:00"}
    assert "start" in assert_error(api.post(path, as_="ana", json=past), 422)["errors"]["json"]
    assert "end" in assert_error(api.post(path, as_="ana", json=backwards), 422)["errors"]["json"]
    assert api.get(url(world.maria, booked["id"]), as_="ana").get_json()["start"] == booked["start"]
    assert stored() == (1, 1)


def test_the_list_is_by_start_and_filters_by_window_and_status(api: Api, world: World) -> None:
    later = book(api, world.maria, start="2026-12-10T09:00:00-05:00", end="2026-12-10T10:00-05:00")
    first = book(api, world.maria)
    other = book(api, world.maria, start="2026-12-03T13:00:00-05:00", end="2026-12-03T14:00-05:00")
    api.post(url(world.maria, other["id"], "/cancel"), as_="ana", json={})
    path = f"/patients/{world.maria}/appointments"

    def ids(**query: str) -> list[int]:
        r = api.get(path, as_="maria", query_string=query)
        assert r.status_code == 200, r.get_json()
        return [a["id"] for a in r.get_json()]

    assert ids() == [first["id"], other["id"], later["id"]]
    # Overlap with the window: the 09:00-09:30 visit is on at 09:15.
    day = {"from": "2026-12-03T09:15:00-05:00", "to": "2026-12-04T00:00:00-05:00"}
    assert ids(**day) == [first["id"], other["id"]]
    assert ids(**day, status="booked") == [first["id"]]
    assert ids(**{"from": "2026-12-04T00:00:00Z"}) == [later["id"]]
    paged = api.get(path, as_="maria", query_string={"page_size": 1, "page": 2})
    assert [a["id"] for a in paged.get_json()] == [other["id"]]
    assert '"total": 3' in paged.headers["X-Pagination"]
    assert_error(
        api.get(
            path,
            as_="maria",
            query_string={"to": "2026-12-01T00:00:00Z", "from": "2026-12-02T00:00:00Z"},
        ),
        422,
    )
    assert_error(api.get(path, as_="maria", query_string={"from": "2026-12-02T00:00:00"}), 422)
    assert_error(api.get(path, as_="maria", query_string={"status": "rescheduled"}), 422)
    far = {"to": "9999-12-31T23:59:59-05:00"}
    assert (
        "to" in assert_error(api.get(path, as_="maria", query_string=far), 422)["errors"]["query"]
    )


def test_an_appointment_is_found_only_under_its_own_patient(api: Api, world: World) -> None:
    chens = book(api, world.chen, who="david")
    r = api.get(url(world.maria, chens["id"]), as_="maria")
    assert assert_error(r, 404)["message"] == "No such appointment."
    assert_error(api.get(url(world.chen, chens["id"]), as_="ana"), 404)
    assert_error(api.get(url(world.chen, chens["id"], "/history"), as_="sam"), 404)
    assert_error(api.post(url(world.maria, chens["id"], "/cancel"), as_="maria", json={}), 404)
    assert api.get(url(world.chen, chens["id"]), as_="david").get_json()["status"] == "booked"


def test_a_caregivers_reads_and_writes_are_in_the_access_log(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    api.get(url(world.maria, booked["id"], "/history"), as_="ana")
    log = api.get(f"/patients/{world.maria}/access-log", as_="maria").get_json()
    actions = {(e["action"], e["actor_role"]) for e in log}
    assert {("manage_appointments", "daughter"), ("view_appointments", "daughter")} <= actions


def test_every_change_reaches_the_reminder_hook(
    api: Api, world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The seam issue 5 fills in: each change must pass through it with the fresh state.
    seen: list[tuple[int, str, str]] = []

    def spy(_session: Any, appointment: Appointment) -> None:
        seen.append(
            (appointment.id, appointment.status, appointment.start_at.astimezone(UTC).isoformat())
        )

    monkeypatch.setattr(service, "replan_reminders", spy)
    booked = book(api, world.maria)
    later = {"start": "2026-12-04T09:00:00-05:00", "end": "2026-12-04T09:30:00-05:00"}
    api.post(url(world.maria, booked["id"], "/reschedule"), as_="ana", json=later)
    api.patch(url(world.maria, booked["id"]), as_="ana", json={"reminder_lead_minutes": [60]})
    api.post(url(world.maria, booked["id"], "/cancel"), as_="ana", json={})
    assert seen == [
        (booked["id"], "booked", "2026-12-03T14:00:00+00:00"),
        (booked["id"], "booked", "2026-12-04T14:00:00+00:00"),
        (booked["id"], "booked", "2026-12-04T14:00:00+00:00"),
        (booked["id"], "cancelled", "2026-12-04T14:00:00+00:00"),
    ]


def test_of_a_cancel_and_a_reschedule_at_the_same_moment_only_the_first_counts(
    api: Api, world: World
) -> None:
    booked = book(api, world.maria)
    with Session(db.get_engine()) as elsewhere:
        stale = elsewhere.get(Appointment, booked["id"])  # read before the cancel lands
        assert stale is not None
        api.post(url(world.maria, booked["id"], "/cancel"), as_="maria", json={})
        ana = elsewhere.get(User, world.users["ana"].id)
        assert ana is not None
        later = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
        with pytest.raises(ServiceError) as raised:
            service.reschedule(elsewhere, stale, ana, later, later + timedelta(hours=1))
        assert raised.value.status == 409 and "same moment" in raised.value.message
    now_stored = api.get(url(world.maria, booked["id"]), as_="maria").get_json()
    assert (now_stored["status"], now_stored["start"]) == ("cancelled", booked["start"])
    assert [e["kind"] for e in history(api, world.maria, booked["id"])] == ["created", "cancelled"]


def test_lead_times_can_be_set_per_appointment(api: Api, world: World) -> None:
    custom = book(api, world.maria, reminder_lead_minutes=[60, 2880, 15])
    assert custom["reminder_lead_minutes"] == [2880, 60, 15]  # earliest notice first
    none = book(api, world.maria, reminder_lead_minutes=[])
    assert none["reminder_lead_minutes"] == []


def test_history_of_a_stored_appointment_keeps_utc_underneath(api: Api, world: World) -> None:
    booked = book(api, world.maria)
    row = db.session.get(Appointment, booked["id"])
    assert row is not None
    assert row.start_at == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert row.end_at - row.start_at == timedelta(minutes=30)
