"""The private calendar feed: what a calendar app subscribed to it reads, for each persona,
parsed with the icalendar library; privacy by default; rotate and revoke; the access log."""

from __future__ import annotations

import logging
import threading
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from werkzeug.serving import make_server

from backend import db
from backend.models import AccessLogEntry, CalendarFeed
from tests.conftest import Api, Clock, World, assert_error
from tests.matrix import ALLOWED
from tests.matrix_medications import DAILY_8

# The tests' clock starts 2026-11-25T15:00Z (10:00 in New York, after the fall-back).
VISIT = {
    "title": "Endocrinology follow-up",
    "type": "telehealth",
    "provider_name": "Dr. Lucía Ortega",
    "video_url": "https://visit.example.org/room/4821",
    "start": "2026-12-03T09:00:00-05:00",
    "end": "2026-12-03T09:30:00-05:00",
    "preparation_notes": "Fasting from midnight; water is fine. Have the glucose log ready "
    "and the list of questions about the new insulin pen you wrote down last week.",
}


def subscribe(api: Api, who: str, **settings: Any) -> str:
    """Make the persona's feed; the path of its secret URL."""
    r = api.post("/me/calendar-feed", as_=who, json=settings)
    assert r.status_code == 201, r.get_json()
    return urlsplit(r.get_json()["url"]).path


def fetch(api: Api, path: str, **kw: Any) -> Any:
    """What a calendar app gets: no Authorization header, only the URL."""
    return api.get(path, **kw)


def calendar(api: Api, path: str) -> Calendar:
    r = fetch(api, path)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    return Calendar.from_ical(r.data)


def events(cal: Calendar) -> list[Any]:
    return list(cal.walk("VEVENT"))


def book(api: Api, patient_id: int, who: str = "ana", **fields: Any) -> dict[str, Any]:
    r = api.post(f"/patients/{patient_id}/appointments", as_=who, json={**VISIT, **fields})
    assert r.status_code == 201, r.get_json()
    return r.get_json()  # type: ignore[no-any-return]


def secret_of(path: str) -> str:
    return path.removeprefix("/calendar/").removesuffix(".ics")


def test_marias_feed_parses_with_zones_uids_and_lock_screen_titles(api: Api, world: World) -> None:
    visit = book(api, world.maria)
    cal = calendar(api, subscribe(api, "maria"))
    assert str(cal["PRODID"]).startswith("-//care-companion")
    [zone] = cal.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "America/New_York"
    [event] = events(cal)
    assert str(event["UID"]) == f"appointment-{visit['id']}@care-companion"
    assert event["DTSTAMP"].dt.utcoffset() == timedelta(0)
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event["DTSTART"].dt.isoformat() == "2026-12-03T09:00:00-05:00"
    assert event["DTEND"].dt.isoformat() == "2026-12-03T09:30:00-05:00"
    assert str(event["STATUS"]) == "CONFIRMED" and event["SEQUENCE"] == 0
    # María reads Spanish; nothing about what the visit is for, where, or with whom.
    assert str(event["SUMMARY"]) == "Cita"
    assert "LOCATION" not in event and "DESCRIPTION" not in event
    raw = fetch(api, subscribe_path(api, "maria")).get_data(as_text=True)
    for secret_detail in ("Endocrinology", "Ortega", "Fasting", "visit.example.org"):
        assert secret_detail not in raw


def subscribe_path(api: Api, who: str) -> str:
    """A fresh URL for a persona who already has a feed (rotating it)."""
    r = api.post("/me/calendar-feed/rotate", as_=who)
    assert r.status_code == 200, r.get_json()
    return urlsplit(r.get_json()["url"]).path


def test_times_either_side_of_the_spring_change_stay_at_nine_local(api: Api, world: World) -> None:
    book(api, world.maria, start="2027-03-12T09:00:00-05:00", end="2027-03-12T09:30:00-05:00")
    book(api, world.maria, start="2027-03-15T09:00:00-04:00", end="2027-03-15T09:30:00-04:00")
    cal = calendar(api, subscribe(api, "maria"))
    before, after = sorted(events(cal), key=lambda e: e["DTSTART"].dt)
    assert [e["DTSTART"].dt.hour for e in (before, after)] == [9, 9]
    assert before["DTSTART"].dt.utcoffset() == timedelta(hours=-5)
    assert after["DTSTART"].dt.utcoffset() == timedelta(hours=-4)
    [zone] = cal.walk("VTIMEZONE")
    starts = {str(c["DTSTART"].dt) for c in zone.walk("DAYLIGHT")}
    assert "2027-03-14 03:00:00" in starts  # the 2027 spring-forward is in the VTIMEZONE


def test_a_reschedule_bumps_the_sequence_and_keeps_the_uid_and_a_cancel_says_so(
    api: Api, world: World
) -> None:
    visit = book(api, world.maria)
    path = subscribe(api, "maria")
    [first] = events(calendar(api, path))
    moved = api.post(
        f"/patients/{world.maria}/appointments/{visit['id']}/reschedule",
        as_="ana",
        json={"start": "2026-12-04T11:00:00-05:00", "end": "2026-12-04T11:30:00-05:00"},
    )
    assert moved.status_code == 200
    [second] = events(calendar(api, path))
    assert second["UID"] == first["UID"]
    assert second["SEQUENCE"] == first["SEQUENCE"] + 1
    assert second["DTSTART"].dt.isoformat() == "2026-12-04T11:00:00-05:00"
    cancelled = api.post(f"/patients/{world.maria}/appointments/{visit['id']}/cancel", as_="ana")
    assert cancelled.status_code == 200
    [third] = events(calendar(api, path))
    assert third["UID"] == first["UID"]
    assert str(third["STATUS"]) == "CANCELLED"
    assert third["SEQUENCE"] == second["SEQUENCE"] + 1


def _ana_grant(api: Api, world: World) -> int:
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    return int(next(g["id"] for g in grants if g["relationship"] == "daughter"))


def permit(api: Api, world: World, permissions: list[str]) -> None:
    """María changes what Ana may see."""
    grant = f"/patients/{world.maria}/caregivers/{_ana_grant(api, world)}"
    r = api.patch(grant, as_="maria", json={"permissions": permissions})
    assert r.status_code == 200, r.get_json()


def test_a_caregiver_sees_what_her_grant_allows_at_each_fetch(api: Api, world: World) -> None:
    book(api, world.maria)
    path = subscribe(api, "ana")
    [event] = events(calendar(api, path))
    assert str(event["SUMMARY"]) == "Appointment (María)"
    permit(api, world, ["view_medications"])
    assert events(calendar(api, path)) == []
    permit(api, world, ["view_appointments"])
    assert len(events(calendar(api, path))) == 1
    grant = f"/patients/{world.maria}/caregivers/{_ana_grant(api, world)}"
    assert api.delete(grant, as_="maria").status_code == 204
    assert events(calendar(api, path)) == []


CARE_TEAM = {"priya", "omar"}


@pytest.mark.parametrize("persona", ["maria", "ana", "david", "priya", "omar", "sam"])
def test_each_persona_sees_the_appointments_of_exactly_whom_they_may(
    api: Api, world: World, persona: str
) -> None:
    """The feed in the route x persona matrix: the patients whose events a persona's feed
    holds, from tests/matrix.py's independent statement of the policy. A care-team
    member's feed holds only the visits they make, not their panel's diary."""
    titles = {"maria": "Check-up María", "chen": "Check-up Wei"}
    book(api, world.maria, title=titles["maria"])
    book(api, world.chen, who="david", title=titles["chen"], time_zone="America/Los_Angeles")
    cal = calendar(api, subscribe(api, persona, show_details=True))
    seen = {str(e["SUMMARY"]).split(" (")[0] for e in events(cal)}
    expected = {
        titles[patient]
        for patient, allowed in ALLOWED[persona].items()
        if "view_appointments" in allowed and persona not in CARE_TEAM
    }
    assert seen == expected


def test_a_nurse_feed_holds_the_visits_she_makes_while_she_is_on_the_team(
    api: Api, world: World
) -> None:
    book(api, world.maria, title="Not hers")
    priya = world.users["priya"].id
    visit = book(
        api,
        world.maria,
        title="Home visit",
        type="home_visit",
        video_url=None,
        location="Home",
        provider_user_id=priya,
    )
    path = subscribe(api, "priya")
    [event] = events(calendar(api, path))
    assert str(event["UID"]) == f"appointment-{visit['id']}@care-companion"
    assert str(event["SUMMARY"]) == "Appointment (María)"
    logged = select(AccessLogEntry).where(AccessLogEntry.action == "calendar_feed")
    [row] = db.session.scalars(logged)
    assert (row.patient_id, row.actor_user_id, row.actor_role) == (world.maria, priya, "nurse")


def test_details_and_doses_only_when_the_owner_opts_in(api: Api, world: World) -> None:
    book(api, world.maria)
    med = {"name": "Metformin", "strength": "500 mg", "timing": DAILY_8}
    assert api.post(f"/patients/{world.maria}/medications", as_="maria", json=med).status_code < 300
    path = subscribe(api, "ana")
    raw = fetch(api, path).get_data(as_text=True)
    assert "Metformin" not in raw and "Endocrinology" not in raw
    assert len(events(Calendar.from_ical(raw))) == 1  # doses are off by default

    assert api.patch("/me/calendar-feed", as_="ana", json={"include_doses": True}).status_code < 300
    raw = fetch(api, path).get_data(as_text=True)
    assert "Metformin" not in raw
    doses = [e for e in events(Calendar.from_ical(raw)) if str(e["UID"]).startswith("dose-")]
    assert len(doses) == 14  # 08:00 on each of the next 14 mornings (added after 08:00 today)
    assert {str(e["SUMMARY"]) for e in doses} == {"Medicine time (María)"}
    assert {str(e["TRANSP"]) for e in doses} == {"TRANSPARENT"}
    assert {e["DTSTART"].dt.hour for e in doses} == {8}

    r = api.patch("/me/calendar-feed", as_="ana", json={"show_details": True})
    assert r.get_json() == {**r.get_json(), "show_details": True, "include_doses": True}
    cal = calendar(api, path)
    summaries = {str(e["SUMMARY"]) for e in events(cal)}
    assert summaries == {"Endocrinology follow-up (María)", "Metformin 500 mg (María)"}
    [visit] = [e for e in events(cal) if str(e["UID"]).startswith("appointment-")]
    assert str(visit["LOCATION"]) == VISIT["video_url"]
    assert "Fasting from midnight" in str(visit["DESCRIPTION"])

    permit(api, world, ["view_appointments"])
    assert "Metformin" not in fetch(api, path).get_data(as_text=True)


def test_lines_are_folded_at_75_octets_with_crlf(api: Api, world: World) -> None:
    long_title = " ".join(["Revisión de endocrinología con la Dra. Lucía Ortega"] * 3)
    book(api, world.maria, title=long_title)
    raw = fetch(api, subscribe(api, "maria", show_details=True)).data
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # something was long enough to fold
    assert Calendar.from_ical(raw).to_ical() == raw  # and it round-trips unchanged


def test_rotate_and_revoke_make_the_old_url_unknown_at_once(api: Api, world: World) -> None:
    old = subscribe(api, "maria")
    unknown = assert_error(fetch(api, "/calendar/" + "A" * 43 + ".ics"), 404)
    new = subscribe_path(api, "maria")
    assert new != old
    assert assert_error(fetch(api, old), 404)["message"] == unknown["message"]
    assert fetch(api, new).status_code == 200
    assert api.delete("/me/calendar-feed", as_="maria").status_code == 204
    assert assert_error(fetch(api, new), 404)["message"] == unknown["message"]
    assert_error(api.get("/me/calendar-feed", as_="maria"), 404)
    for odd in ("/calendar/%20.ics", "/calendar/" + "x" * 200 + ".ics", "/calendar/a$b.ics"):
        assert assert_error(fetch(api, odd), 404)["message"] == unknown["message"]


def test_an_unchanged_feed_answers_304_to_its_etag(api: Api, world: World, clock: Clock) -> None:
    book(api, world.maria)
    path = subscribe(api, "maria")
    first = fetch(api, path)
    etag = first.headers["ETag"]
    clock.advance(minutes=5)
    again = fetch(api, path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    book(api, world.maria, start="2026-12-05T09:00:00-05:00", end="2026-12-05T09:30:00-05:00")
    assert fetch(api, path, headers={"If-None-Match": etag}).status_code == 200


def test_each_fetch_is_in_the_access_log_without_the_secret(api: Api, world: World) -> None:
    book(api, world.maria)
    path = subscribe(api, "ana")
    own = subscribe(api, "maria")
    for p in (path, path, own):
        assert fetch(api, p).status_code == 200
    rows = list(db.session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.id)))
    feed_rows = [r for r in rows if r.action == "calendar_feed"]
    assert len(feed_rows) == 2  # Ana's two fetches; María's own reads are not logged
    for row in feed_rows:
        assert (row.patient_id, row.actor_user_id) == (world.maria, world.users["ana"].id)
        assert (row.actor_role, row.method, row.status) == ("daughter", "GET", 200)
        assert row.path == "/calendar/<secret>.ics"
    for row in rows:
        assert secret_of(path) not in row.path and secret_of(own) not in row.path
    log = api.get(f"/patients/{world.maria}/access-log", as_="maria").get_json()
    assert [e["action"] for e in log].count("calendar_feed") == 2


def test_bad_input_is_a_422_and_changes_nothing(api: Api, world: World) -> None:
    for body in ({"show_details": "yes"}, {"colour": "blue"}, {"include_doses": 1}):
        r = api.post("/me/calendar-feed", as_="maria", json=body)
        assert assert_error(r, 422)["errors"]
    assert db.session.scalar(select(func.count()).select_from(CalendarFeed)) == 0
    assert_error(api.patch("/me/calendar-feed", as_="maria", json={}), 404)  # no feed yet
    subscribe(api, "maria")
    assert_error(api.post("/me/calendar-feed", as_="maria", json={}), 409)
    assert_error(api.patch("/me/calendar-feed", as_="maria", json={"url": "x"}), 422)
    assert_error(api.patch("/me/calendar-feed", as_="maria", json={"show_details": None}), 422)
    feed = api.get("/me/calendar-feed", as_="maria").get_json()
    assert feed["show_details"] is False and feed["include_doses"] is False
    assert "url" not in feed
    assert_error(api.get("/me/calendar-feed"), 401)  # the management routes need sign-in


def test_the_secret_never_reaches_the_servers_request_logs(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A real HTTP server (werkzeug's, as the demo runs) and gunicorn's access-log call."""
    path = subscribe(api, "maria")
    db.session.commit()
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    caplog.set_level(logging.INFO)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
            assert r.status == 200 and r.read().startswith(b"BEGIN:VCALENDAR")
    finally:
        server.shutdown()
        thread.join()
    gunicorn_atoms = {"h": "10.0.0.1", "r": f"GET {path} HTTP/1.1", "s": "200"}
    logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s', gunicorn_atoms)
    messages = [record.getMessage() for record in caplog.records]
    assert sum("/calendar/<secret>.ics" in m for m in messages) == 2, messages
    assert not [m for m in messages if secret_of(path) in m]


def test_dose_times_stay_at_eight_local_across_the_spring_change(
    api: Api, world: World, clock: Clock
) -> None:
    clock.advance(days=105)  # 2027-03-10, four days before New York springs forward
    med = {"name": "Metformin", "timing": DAILY_8}
    assert (
        api.post(f"/patients/{world.maria}/medications", as_="maria", json=med).status_code == 201
    )
    cal = calendar(api, subscribe(api, "maria", include_doses=True))
    doses = sorted(events(cal), key=lambda e: e["DTSTART"].dt)
    assert {e["DTSTART"].dt.hour for e in doses} == {8}
    offsets = [e["DTSTART"].dt.utcoffset() for e in doses]
    assert offsets[0] == timedelta(hours=-5) and offsets[-1] == timedelta(hours=-4)


def test_the_second_half_past_one_of_a_fall_back_night_is_written_in_utc(
    api: Api, world: World, clock: Clock
) -> None:
    """01:30 happens twice on 2027-11-07 in New York; a TZID time would mean the first."""
    clock.advance(days=340)
    book(api, world.maria, start="2027-11-07T01:30:00-05:00", end="2027-11-07T02:15:00-05:00")
    [event] = events(calendar(api, subscribe(api, "maria")))
    start = event["DTSTART"].dt
    assert "TZID" not in event["DTSTART"].params and start.utcoffset() == timedelta(0)
    assert start.isoformat() == "2027-11-07T06:30:00+00:00"
    assert event["DTEND"].params["TZID"] == "America/New_York"  # 02:15 happens once
