"""Check-ins through the API: the built-in screeners, answers validated and scored, the item-9
safety flag with crisis guidance in the patient's language, who may answer, and the history."""

from __future__ import annotations

from typing import Any

from backend import db
from backend.models import CaregiverGrant, CheckinResponse, Patient
from tests.conftest import Api, Clock, World, assert_error

PHQ9_ITEMS = [
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
]


def phq9(values: list[int]) -> dict[str, Any]:
    return {"template": "PHQ-9", "answers": dict(zip(PHQ9_ITEMS, values, strict=True))}


def answer(api: Api, patient_id: int, who: str, body: dict[str, Any]) -> Any:
    return api.post(f"/patients/{patient_id}/checkin-responses", as_=who, json=body)


def _count() -> int:
    return db.session.query(CheckinResponse).count()


def test_the_builtin_templates_are_listed_with_loinc_codes(api: Api, world: World) -> None:
    r = api.get("/checkin-templates", as_="sam")
    assert r.status_code == 200
    templates = {t["code"]: t for t in r.get_json()}
    assert set(templates) == {"PHQ-2", "PHQ-9", "GAD-7", "SOCIAL-NEEDS", "POST-DISCHARGE"}
    assert templates["PHQ-9"]["loinc"] == "44249-1"
    assert templates["PHQ-9"]["max_score"] == 27
    assert [i["code"] for i in templates["PHQ-9"]["items"]] == PHQ9_ITEMS
    assert templates["PHQ-2"]["max_score"] == 6
    assert templates["GAD-7"]["items"][1]["answers"][2]["code"] == "LA18938-3"
    assert not any(templates[c]["caregiver_may_answer"] for c in ("PHQ-2", "PHQ-9", "GAD-7"))
    assert_error(api.get("/checkin-templates"), 401)


def test_maria_answers_a_phq9_and_it_is_scored(api: Api, world: World) -> None:
    r = answer(api, world.maria, "maria", phq9([2, 2, 1, 1, 1, 1, 1, 1, 0]))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["template"], body["score"], body["band"], body["flags"]) == (
        "PHQ-9",
        10,
        "moderate",
        [],
    )
    assert body["answers"]["44250-9"] == "LA6570-1"  # stored as the LOINC answer code
    assert body["on_behalf"] is False
    assert "crisis_guidance" not in body


def test_item9_raises_a_safety_flag_with_crisis_guidance_in_spanish(api: Api, world: World) -> None:
    patient = db.session.get(Patient, world.maria)
    assert patient is not None
    patient.language = "es-MX"
    db.session.commit()
    r = answer(api, world.maria, "maria", phq9([0, 0, 0, 0, 0, 0, 0, 0, 1]))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["score"], body["band"], body["flags"]) == (1, "none", ["safety"])
    assert "988" in body["crisis_guidance"] and "Llame" in body["crisis_guidance"]


def test_crisis_guidance_in_english_by_default(api: Api, world: World) -> None:
    patient = db.session.get(Patient, world.maria)
    assert patient is not None
    patient.language = "en-US"
    db.session.commit()
    r = answer(api, world.maria, "priya", phq9([3] * 9))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["score"], body["band"], body["flags"]) == (27, "severe", ["safety"])
    assert body["on_behalf"] is True  # Priya recorded it from a phone call
    assert body["answered_by_user_id"] == world.users["priya"].id
    assert "Call or text 988" in body["crisis_guidance"]


def test_a_bad_answer_is_a_422_naming_the_item_and_nothing_is_stored(
    api: Api, world: World
) -> None:
    before = _count()
    body = phq9([0, 0, 0, 0, 0, 0, 0, 0, 0])
    body["answers"]["44259-0"] = "LA9999-9"
    body["answers"]["44253-3"] = 4
    err = assert_error(answer(api, world.maria, "maria", body), 422)
    assert set(err["errors"]["json"]["answers"]) == {"44259-0", "44253-3"}
    err = assert_error(
        answer(api, world.maria, "maria", {"template": "PHQ-2", "answers": {"1234-5": 0}}), 422
    )
    assert set(err["errors"]["json"]["answers"]) == {"1234-5"}
    err = assert_error(
        answer(api, world.maria, "maria", {"template": "XYZ", "answers": {"44250-9": 0}}), 422
    )
    assert "template" in err["errors"]["json"]
    assert_error(
        answer(api, world.maria, "maria", {"template": "PHQ-2", "answers": {"44250-9": True}}),
        422,
    )
    assert _count() == before


def test_an_incomplete_screener_is_refused_naming_the_missing_items(api: Api, world: World) -> None:
    before = _count()
    body = {"template": "GAD-7", "answers": {"69725-0": 1, "68509-9": "LA18938-3"}}
    err = assert_error(answer(api, world.maria, "maria", body), 422)
    assert len(err["errors"]["json"]["answers"]) == 5
    assert _count() == before


def test_phq2_positive_screen(api: Api, world: World) -> None:
    body = {"template": "PHQ-2", "answers": {"44250-9": "LA6570-1", "44255-8": "LA6569-3"}}
    r = answer(api, world.maria, "maria", body)
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["score"], r.get_json()["band"], r.get_json()["flags"]) == (
        3,
        "positive",
        ["positive_screen"],
    )


def test_caregivers_may_not_answer_a_screener_even_with_view_checkins(
    api: Api, world: World
) -> None:
    grant = (
        db.session.query(CaregiverGrant).filter_by(caregiver_user_id=world.users["ana"].id).one()
    )
    grant.permissions = [*grant.permissions, "view_checkins"]
    db.session.commit()
    body = {"template": "PHQ-2", "answers": {"44250-9": 0, "44255-8": 0}}
    assert_error(answer(api, world.maria, "ana", body), 403)
    assert_error(answer(api, world.chen, "david", body), 403)  # managing caregiver too
    # but with view_checkins Ana sees Maria's answers
    assert answer(api, world.maria, "maria", body).status_code == 201
    r = api.get(f"/patients/{world.maria}/checkin-responses", as_="ana")
    assert r.status_code == 200 and len(r.get_json()) == 1


def test_history_is_newest_first_and_paginated(api: Api, world: World, clock: Clock) -> None:
    for total in (0, 1, 2):
        values = [0] * 9
        values[0] = total
        assert answer(api, world.maria, "maria", phq9(values)).status_code == 201
        clock.advance(days=1)
    r = api.get(f"/patients/{world.maria}/checkin-responses", as_="priya")
    assert r.status_code == 200
    assert [x["score"] for x in r.get_json()] == [2, 1, 0]
    r = api.get(f"/patients/{world.maria}/checkin-responses?page=2&page_size=2", as_="maria")
    assert [x["score"] for x in r.get_json()] == [0]
    assert_error(api.get(f"/patients/{world.maria}/checkin-responses", as_="omar"), 404)
    assert_error(api.get(f"/patients/{world.maria}/checkin-responses", as_="ana"), 403)
