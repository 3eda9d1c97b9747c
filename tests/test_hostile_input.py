"""Input an attacker (or a buggy client) sends: always a 4xx in our one shape, never a 500.

Each case here was a 500 once (issue 11, finding 5).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from backend import db
from backend.models import Message
from tests.conftest import Api, World, assert_error
from tests.queries import statements
from tests.test_medications import add_med, log, ny
from tests.test_messages import start


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1000-01-01", "3000-06-01"])
def test_a_far_date_in_the_today_view_is_a_422(api: Api, world: World, day: str) -> None:
    body = assert_error(api.get(f"/me/today?date={day}", as_="maria"), 422)
    assert "date" in str(body.get("errors")), body


def test_the_today_view_takes_a_near_date(api: Api, world: World) -> None:
    assert api.get("/me/today?date=2026-12-31", as_="maria").status_code == 200


@pytest.mark.parametrize("value", ["me\n", "12\n", " me", "me "])
def test_a_worklist_assignee_with_a_trailing_newline_is_a_422(
    api: Api, world: World, value: str
) -> None:
    assert_error(api.get("/worklist", as_="priya", query_string={"assigned_to": value}), 422)


def _raw(api: Api, method: str, path: str, who: str, text: str) -> Any:
    return api.request(
        method, path, who, data=text.encode("utf-8"), content_type="application/json"
    )


def test_a_lone_surrogate_in_a_json_string_is_a_400(api: Api, world: World) -> None:
    for method, path, body in [
        ("PATCH", "/me", '{"preferred_name": "Ana \\ud800"}'),
        ("POST", f"/patients/{world.maria}/threads", '{"subject": "\\udfff", "body": "x"}'),
        ("POST", f"/patients/{world.maria}/medications", '{"name": "\\udc00x"}'),
    ]:
        body_error = assert_error(_raw(api, method, path, "maria", body), 400)
        assert "surrogate" in body_error["message"]
    # A pair is an ordinary character (an emoji): accepted.
    r = _raw(api, "PATCH", "/me", "maria", '{"preferred_name": "Mar\\u00eda \\ud83c\\udf3b"}')
    assert r.status_code == 200 and r.get_json()["preferred_name"] == "María \U0001f33b"


def test_json_nested_100000_deep_is_a_400(api: Api, world: World) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert_error(_raw(api, "PATCH", "/me", "maria", deep), 400)


@pytest.mark.parametrize(
    "timing",
    [
        {
            "repeat": {
                "boundsPeriod": {"start": "9999-12-31", "end": "9999-12-31"},
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
            }
        },
        {
            "repeat": {
                "boundsDuration": {"value": 1e300, "unit": "d"},
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
            }
        },
        {"repeat": {"frequency": 1, "period": 1e308, "periodUnit": "d"}},
        {
            "repeat": {
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
                "offset": 1_000_000_000,
                "when": ["ACM"],
            }
        },
    ],
)
def test_timing_numbers_out_of_any_plausible_range_are_a_422(
    api: Api, world: World, timing: dict[str, Any]
) -> None:
    r = api.post(
        f"/patients/{world.maria}/medications",
        as_="maria",
        json={"name": "Test", "timing": timing},
    )
    body = assert_error(r, 422)
    assert "timing" in str(body.get("errors")), body


TOKEN = "fcm-token-" + "z" * 140


def test_another_accounts_token_from_another_installation_is_refused(
    api: Api, world: World
) -> None:
    payload = {"fcm_token": TOKEN, "platform": "ios", "notifications_enabled": True}
    assert api.put("/me/devices/marias-phone", as_="maria", json=payload).status_code in (200, 201)
    body = assert_error(api.put("/me/devices/other-phone", as_="ana", json=payload), 409)
    assert "fcm_token" in str(body.get("errors"))
    assert len(api.get("/me/devices", as_="maria").get_json()) == 1  # hers still


def test_signed_in_answers_are_never_cached(api: Api, world: World) -> None:
    assert api.get("/me", as_="maria").headers["Cache-Control"] == "no-store"
    assert "no-store" not in api.get("/healthz").headers.get("Cache-Control", "")


@pytest.mark.parametrize(
    "name", ["Nurse\u202ePriya", "Ana\nCare Team", "Ana\x07", "\u2066Ana\u2069", " Ana"]
)
def test_names_with_control_or_direction_override_characters_are_a_422(
    api: Api, world: World, name: str
) -> None:
    body = assert_error(api.patch("/me", as_="ana", json={"preferred_name": name}), 422)
    assert "preferred_name" in str(body["errors"])


def test_a_name_in_any_script_with_emoji_is_fine(api: Api, world: World) -> None:
    r = api.patch("/me", as_="ana", json={"preferred_name": "Zoë 李 🌻"})
    assert r.status_code == 200


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules"])
def test_zones_that_are_not_a_place_are_a_422(api: Api, world: World, zone: str) -> None:
    assert_error(api.patch("/me", as_="maria", json={"time_zone": zone}), 422)


@pytest.mark.parametrize("born", ["9999-01-01", "1850-01-01", "2999-12-31"])
def test_implausible_birth_dates_are_a_422(api: Api, world: World, born: str) -> None:
    r = api.patch(f"/patients/{world.maria}", as_="maria", json={"birth_date": born})
    assert "birth_date" in str(assert_error(r, 422)["errors"])


def test_the_apps_own_limits_and_options_answer_without_html(api: Api, world: World) -> None:
    assert_error(api.get("/me?x=" + "a" * 5000, as_="maria"), 414)
    assert_error(api.get("/me", as_="maria", headers={"X-Filler": "b" * 9000}), 431)
    r = api.request("OPTIONS", "/me")
    assert r.status_code == 204 and "GET" in r.headers["Allow"]
    assert "html" not in r.headers.get("Content-Type", "")


def _queries_for_404(api: Api, engine: Any, who: str, path: str) -> int:
    """The statements a request that must be a 404 runs, as in production (nothing already
    in the request's session, sign-in done before)."""
    api.get("/me", as_=who)
    db.session.commit()
    db.session.expunge_all()
    with statements(engine) as seen:
        assert_error(api.get(path, as_=who), 404)
    return len(seen)


def test_a_404_costs_the_same_queries_whether_or_not_the_patient_exists(
    api: Api, world: World, engine: Any
) -> None:
    def count(path: str) -> int:
        return _queries_for_404(api, engine, "sam", path)

    assert count(f"/patients/{world.maria}") == count("/patients/987654")


def test_a_404_costs_the_same_queries_whether_or_not_the_id_exists(
    api: Api, world: World, engine: Any
) -> None:
    """Ids are sequential (README: "Public ids"): what keeps them from telling an outsider
    anything is one answer and one cost for "not yours" and "not there". Before, a care team
    that exists cost a query more on the team routes and four more on FHIR CareTeam, a FHIR
    Patient that does not exist a query more, and an existing dose log or message one more."""
    med = add_med(api, world.maria)["id"]
    dose = log(api, world.maria, med, "maria", "phone-log-0001", ny(7, 40)).get_json()["id"]
    start(api, world.maria)
    message = db.session.scalars(select(Message.id)).one()
    team = world.teams["Riverside Primary Care A"].id
    cases = [
        ("sam", "/care-teams/{}/panel", team),
        ("omar", "/care-teams/{}/panel", team),
        ("sam", "/care-teams/{}/patients", team),
        ("sam", "/fhir/CareTeam/{}", team),
        ("sam", "/fhir/Patient/{}", world.maria),
        ("sam", "/fhir/MedicationRequest/{}", med),
        ("sam", "/fhir/MedicationAdministration/{}", dose),
        ("sam", "/fhir/Communication/{}", message),
        ("david", f"/patients/{world.chen}/medications/{{}}", med),  # María's, on Mr. Chen
    ]
    for who, path, rid in cases:
        there = _queries_for_404(api, engine, who, path.format(rid))
        assert there == _queries_for_404(api, engine, who, path.format(987654)), (who, path)
