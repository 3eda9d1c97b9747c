"""Check-in templates through the API: an organization's own templates (who makes them, who
sees them), every item type with its checks and units, optional and conditional items, who
may answer, and the built-in SOCIAL-NEEDS and POST-DISCHARGE templates."""

from __future__ import annotations

from typing import Any

from backend import db
from backend.models import CaregiverGrant, CheckinResponse, Patient
from backend.services.careteams import add_member, add_team
from tests.conftest import Api, World, assert_error

BUILTINS = {"PHQ-2", "PHQ-9", "GAD-7", "SOCIAL-NEEDS", "POST-DISCHARGE"}


def vitals(code: str = "VITALS", **extra: Any) -> dict[str, Any]:
    """A daily vitals template using every item type."""
    return {
        "code": code,
        "title": "Daily vitals",
        "caregiver_may_answer": True,
        "items": [
            {"code": "weight", "text": "Your weight this morning", "type": "quantity",
             "measure": "weight"},
            {"code": "glucose", "text": "Blood sugar before breakfast", "type": "quantity",
             "measure": "glucose", "required": False},
            {"code": "bp", "text": "Blood pressure", "type": "blood_pressure",
             "required": False},
            {"code": "feeling", "text": "How do you feel today? 0 bad, 10 great",
             "type": "scale"},
            {"code": "swelling", "text": "Are your ankles swollen?", "type": "boolean"},
            {"code": "swelling_since", "text": "Since when?", "type": "date",
             "enable_when": {"item": "swelling", "equals": True}},
            {"code": "breath", "text": "Short of breath?", "type": "choice",
             "answers": [{"code": "no", "display": "No"},
                         {"code": "walking", "display": "When walking"},
                         {"code": "resting", "display": "At rest"}]},
            {"code": "symptoms", "text": "Anything else?", "type": "multi_choice",
             "required": False,
             "answers": [{"code": "dizzy", "display": "Dizzy"},
                         {"code": "cough", "display": "Cough"},
                         {"code": "tired", "display": "Tired"}]},
            {"code": "notes", "text": "Anything to tell your nurse?", "type": "text",
             "max_length": 200, "required": False},
        ],
        **extra,
    }  # fmt: skip


def make_template(api: Api, body: dict[str, Any], who: str = "priya") -> dict[str, Any]:
    r = api.post("/checkin-templates", as_=who, json=body)
    assert r.status_code == 201, r.get_json()
    result: dict[str, Any] = r.get_json()
    return result


def answer(api: Api, patient_id: int, who: str, template: str, answers: dict[str, Any]) -> Any:
    return api.post(
        f"/patients/{patient_id}/checkin-responses",
        as_=who,
        json={"template": template, "answers": answers},
    )


def good_vitals(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"weight": 80, "feeling": 7, "swelling": False, "breath": "no"}
    return base | changes


def _stored() -> int:
    return db.session.query(CheckinResponse).count()


def other_organization(world: World) -> None:
    """Lakeside Health with its own coordinator, Lee, and no patients of ours."""
    team = add_team(db.session(), "Lakeside Health", "Lakeside Cardiology")
    add_member(db.session(), team.id, "lee", "Lee", "lee@example.org", "nurse")
    db.session.commit()


def test_a_nurse_makes_a_template_and_only_her_organization_sees_it(api: Api, world: World) -> None:
    made = make_template(api, vitals())
    assert made["builtin"] is False and made["caregiver_may_answer"] is True
    assert [i["code"] for i in made["items"]][:3] == ["weight", "glucose", "bp"]
    assert made["items"][0]["unit"] == "kg" and made["items"][0]["units"] == ["kg", "[lb_av]"]
    other_organization(world)
    make_template(api, vitals("LAKE-VITALS"), who="lee")

    def codes(who: str) -> set[str]:
        r = api.get("/checkin-templates", as_=who)
        assert r.status_code == 200
        return {t["code"] for t in r.get_json()}

    # Riverside: its members (Omar is on the other Riverside team), its patients and their
    # caregivers; Lakeside sees its own; a stranger sees the built-ins.
    for who in ("priya", "omar", "maria", "ana", "david"):
        assert codes(who) == BUILTINS | {"VITALS"}, who
    assert codes("lee") == BUILTINS | {"LAKE-VITALS"}
    assert codes("sam") == BUILTINS
    assert api.get("/checkin-templates/VITALS", as_="maria").get_json()["title"] == "Daily vitals"
    assert api.get("/checkin-templates/PHQ-9", as_="sam").status_code == 200
    for who, code in (("sam", "VITALS"), ("priya", "LAKE-VITALS"), ("maria", "LAKE-VITALS")):
        body = assert_error(api.get(f"/checkin-templates/{code}", as_=who), 404)
        assert body["message"] == "No such check-in template."
    # and a patient cannot answer another organization's template
    err = assert_error(answer(api, world.maria, "maria", "LAKE-VITALS", good_vitals()), 422)
    assert "template" in err["errors"]["json"]


def test_only_care_team_members_make_templates_for_their_own_organization(
    api: Api, world: World
) -> None:
    assert_error(api.post("/checkin-templates", as_="maria", json=vitals()), 403)
    assert_error(api.post("/checkin-templates", as_="sam", json=vitals()), 403)
    other_organization(world)
    from backend.models import Organization

    lakeside = db.session.query(Organization).filter_by(name="Lakeside Health").one()
    err = assert_error(
        api.post("/checkin-templates", as_="priya", json=vitals(organization_id=lakeside.id)),
        422,
    )
    assert "organization_id" in err["errors"]["json"]
    make_template(api, vitals())
    assert_error(api.post("/checkin-templates", as_="priya", json=vitals()), 409)
    assert_error(api.post("/checkin-templates", as_="priya", json=vitals("PHQ-9")), 409)
    assert_error(api.post("/checkin-templates", as_="priya", json=vitals("lower-case")), 422)


def test_a_template_that_does_not_hold_together_is_refused_naming_the_part(
    api: Api, world: World
) -> None:
    body = vitals()
    body["items"][5]["enable_when"] = {"item": "notes", "equals": True}  # a later item
    body["items"][0]["measure"] = "height"
    body["items"][6]["answers"] = body["items"][6]["answers"][:1]
    body["items"].append({"code": "weight", "text": "Again", "type": "boolean"})
    err = assert_error(api.post("/checkin-templates", as_="priya", json=body), 422)
    assert "measure" in err["errors"]["json"]["items"]["0"]
    body["items"][0]["measure"] = "weight"
    err = assert_error(api.post("/checkin-templates", as_="priya", json=body), 422)
    items = err["errors"]["json"]["items"]
    assert set(items) == {"5", "6", "9"}
    assert "enable_when" in items["5"] and "options" in items["6"] and "id" in items["9"]
    body = vitals(
        flag_rules=[
            {"name": "notes_low", "kind": "threshold", "item": "notes", "op": "<", "value": 3},
            {"name": "heavy", "kind": "threshold", "item": "weight", "op": "~", "value": 3},
            {"name": "score", "kind": "score", "op": ">", "value": 3},
        ]
    )
    err = assert_error(api.post("/checkin-templates", as_="priya", json=body), 422)
    assert "op" in err["errors"]["json"]["flag_rules"]["1"]  # refused by the schema first
    body["flag_rules"][1]["op"] = ">"
    err = assert_error(api.post("/checkin-templates", as_="priya", json=body), 422)
    rules = err["errors"]["json"]["flag_rules"]
    assert set(rules) == {"0", "2"}
    assert "item" in rules["0"] and "kind" in rules["2"]
    assert api.get("/checkin-templates/VITALS", as_="priya").status_code == 404


def test_maria_answers_every_item_type_and_units_are_converted(api: Api, world: World) -> None:
    make_template(api, vitals())
    answers = {
        "weight": {"value": 176.4, "unit": "lb"},
        "glucose": {"value": 5.5, "unit": "mmol/L"},
        "bp": {"systolic": 128, "diastolic": 82},
        "feeling": 6,
        "swelling": True,
        "swelling_since": "2026-11-20",
        "breath": "walking",
        "symptoms": ["tired", "dizzy"],
        "notes": "  Slept badly.  ",
    }
    r = answer(api, world.maria, "maria", "VITALS", answers)
    assert r.status_code == 201, r.get_json()
    stored = r.get_json()["answers"]
    assert stored["weight"] == {
        "value": 176.4,
        "unit": "[lb_av]",
        "canonical_value": 80.01,
        "canonical_unit": "kg",
    }
    assert stored["glucose"]["canonical_value"] == 99.09  # 5.5 x 18.016 mg/dL
    assert stored["glucose"]["canonical_unit"] == "mg/dL"
    assert stored["bp"] == {"systolic": 128, "diastolic": 82}
    assert stored["symptoms"] == ["dizzy", "tired"]  # in the template's order
    assert stored["notes"] == "Slept badly."
    assert (stored["swelling"], stored["swelling_since"], stored["feeling"]) == (
        True,
        "2026-11-20",
        6,
    )
    assert r.get_json()["score"] is None and r.get_json()["raised"] == []
    # a bare number is in the canonical unit; optional items may be left out
    r = answer(api, world.maria, "maria", "VITALS", good_vitals(glucose=110))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["answers"]["glucose"]["canonical_value"] == 110
    assert "bp" not in r.get_json()["answers"]
    one = api.get(f"/patients/{world.maria}/checkin-responses/{r.get_json()['id']}", as_="priya")
    assert one.status_code == 200 and one.get_json()["answers"] == r.get_json()["answers"]


def test_a_bad_answer_of_any_type_is_a_422_naming_the_item_and_nothing_is_stored(
    api: Api, world: World
) -> None:
    make_template(api, vitals())
    before = _stored()
    bad = {
        "weight": {"value": 80, "unit": "stone"},
        "glucose": {"value": 60, "unit": "mmol/L"},  # 1081 mg/dL: out of range
        "bp": {"systolic": 80, "diastolic": 120},
        "feeling": 11,
        "swelling": "yes",
        "breath": "sometimes",
        "symptoms": ["dizzy", "dizzy"],
        "notes": "x" * 201,
        "mood": 3,
    }
    err = assert_error(answer(api, world.maria, "maria", "VITALS", bad), 422)
    named = err["errors"]["json"]["answers"]
    assert set(named) == set(bad)
    assert "Unit one of kg, [lb_av]" in named["weight"][0]
    assert "Out of range" in named["glucose"][0]
    for item, value in (
        ("feeling", 6.5),
        ("weight", True),
        ("swelling_since", "2026-02-30"),
        ("symptoms", []),
        ("notes", "   "),
        ("bp", {"systolic": 120}),
    ):
        answers = good_vitals(**{item: value})
        if item == "swelling_since":
            answers["swelling"] = True
        err = assert_error(answer(api, world.maria, "maria", "VITALS", answers), 422)
        assert set(err["errors"]["json"]["answers"]) == {item}, (item, err)
    assert _stored() == before


def test_a_conditional_item_is_asked_only_after_its_answer(api: Api, world: World) -> None:
    make_template(api, vitals())
    before = _stored()
    # swelling_since is shown only after "yes": an answer to it after "no" is refused,
    err = assert_error(
        answer(api, world.maria, "maria", "VITALS", good_vitals(swelling_since="2026-11-20")),
        422,
    )
    assert "Not asked" in err["errors"]["json"]["answers"]["swelling_since"][0]
    # and after "yes" it is required, like any required item that is shown
    err = assert_error(answer(api, world.maria, "maria", "VITALS", good_vitals(swelling=True)), 422)
    assert err["errors"]["json"]["answers"] == {"swelling_since": ["Missing."]}
    assert "needs every required item" in err["message"]
    missing = good_vitals()
    del missing["feeling"]
    err = assert_error(answer(api, world.maria, "maria", "VITALS", missing), 422)
    assert err["errors"]["json"]["answers"] == {"feeling": ["Missing."]}
    assert _stored() == before
    assert answer(api, world.maria, "maria", "VITALS", good_vitals()).status_code == 201


def test_who_may_answer_is_the_templates_choice(api: Api, world: World) -> None:
    # POST-DISCHARGE: David answers for his father; the where is asked only after a yes
    r = answer(api, world.chen, "david", "POST-DISCHARGE", {"er_visit": False})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["on_behalf"] is True and r.get_json()["raised"] == []
    r = answer(
        api, world.chen, "david", "POST-DISCHARGE", {"er_visit": True, "er_visit_where": "St Jude"}
    )
    assert r.status_code == 201
    assert_error(
        answer(api, world.chen, "david", "POST-DISCHARGE", {"er_visit_where": "St Jude"}), 422
    )
    # SOCIAL-NEEDS asks about personal safety: the patient's own answer, or the care team's
    answers = {k: False for k in ("food", "housing", "transport", "utilities", "safety")}
    assert_error(answer(api, world.chen, "david", "SOCIAL-NEEDS", answers), 403)
    assert answer(api, world.chen, "priya", "SOCIAL-NEEDS", answers).status_code == 201
    assert answer(api, world.maria, "maria", "SOCIAL-NEEDS", answers).status_code == 201
    # an organization's template that keeps caregivers out
    make_template(api, vitals("PRIVATE", caregiver_may_answer=False))
    assert_error(answer(api, world.chen, "david", "PRIVATE", good_vitals()), 403)
    make_template(api, vitals("SHARED"))
    assert answer(api, world.chen, "david", "SHARED", good_vitals()).status_code == 201


def test_the_builtin_templates_share_one_shape(api: Api, world: World) -> None:
    templates = {t["code"]: t for t in api.get("/checkin-templates", as_="maria").get_json()}
    discharge = templates["POST-DISCHARGE"]
    assert discharge["caregiver_may_answer"] is True and discharge["builtin"] is True
    assert [(i["code"], i["type"], i["required"]) for i in discharge["items"]] == [
        ("er_visit", "boolean", True),
        ("er_visit_where", "text", False),
    ]
    assert discharge["items"][1]["enable_when"] == {"item": "er_visit", "equals": True}
    assert discharge["items"][0]["text"] == (
        "Have you been to a hospital or emergency room since you left the hospital?"
    )
    social = templates["SOCIAL-NEEDS"]
    assert [i["code"] for i in social["items"]] == [
        "food",
        "housing",
        "transport",
        "utilities",
        "safety",
    ]
    assert {r["flag"] for r in social["flag_rules"]} == {"social_need"}
    phq9 = templates["PHQ-9"]
    assert phq9["items"][0]["type"] == "choice" and phq9["max_score"] == 27
    assert {r["name"] for r in phq9["flag_rules"]} == {"phq9_item9", "phq9_total"}


def test_a_patient_without_enrollment_sees_only_the_builtins(api: Api, world: World) -> None:
    make_template(api, vitals())
    patient = db.session.get(Patient, world.maria)
    assert patient is not None
    from backend.models import Enrollment

    db.session.query(Enrollment).filter_by(patient_id=world.maria).delete()
    db.session.commit()
    codes = {t["code"] for t in api.get("/checkin-templates", as_="maria").get_json()}
    assert codes == BUILTINS
    assert_error(api.get("/checkin-templates/VITALS", as_="maria"), 404)


def test_caregivers_never_see_social_needs_answers(api: Api, world: World) -> None:
    grant = (
        db.session.query(CaregiverGrant).filter_by(caregiver_user_id=world.users["ana"].id).one()
    )
    grant.permissions = [*grant.permissions, "view_checkins"]
    db.session.commit()
    needs = {k: False for k in ("food", "housing", "transport", "utilities")} | {"safety": True}
    social = answer(api, world.maria, "maria", "SOCIAL-NEEDS", needs).get_json()["id"]
    screener = answer(api, world.maria, "maria", "PHQ-2", {"44250-9": 0, "44255-8": 0}).get_json()[
        "id"
    ]
    base = f"/patients/{world.maria}/checkin-responses"
    assert [r["id"] for r in api.get(base, as_="ana").get_json()] == [screener]
    assert [r["id"] for r in api.get(base, as_="priya").get_json()] == [screener, social]
    for suffix in ("", "/fhir"):
        body = assert_error(api.get(f"{base}/{social}{suffix}", as_="ana"), 404)
        assert body["message"] == "No such check-in response."
        assert api.get(f"{base}/{social}{suffix}", as_="priya").status_code == 200
    assert api.get(f"{base}/{screener}", as_="ana").status_code == 200
    # an organization's template can keep caregivers out too, but not while letting them answer
    err = assert_error(
        api.post(
            "/checkin-templates",
            as_="priya",
            json=vitals("SAFE-HOME", hidden_from_caregivers=True),
        ),
        422,
    )
    assert "hidden_from_caregivers" in err["errors"]["json"]
    made = make_template(
        api, vitals("SAFE-HOME", hidden_from_caregivers=True, caregiver_may_answer=False)
    )
    assert made["hidden_from_caregivers"] is True
    answer(api, world.maria, "maria", "SAFE-HOME", good_vitals())
    assert [r["template"] for r in api.get(base, as_="ana").get_json()] == ["PHQ-2"]
