"""An answered check-in exported as a FHIR R4 QuestionnaireResponse, validated with
fhir.resources (R4B models: the R4 QuestionnaireResponse is unchanged in R4B)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backend.checkins import convert
from tests.conftest import Api, World, assert_error
from tests.test_checkin_templates import answer, make_template, vitals
from tests.test_checkins import phq9

qr_module = pytest.importorskip("fhir.resources.R4B.questionnaireresponse")


def export(api: Api, patient_id: int, response_id: int, who: str = "priya") -> dict[str, Any]:
    r = api.get(f"/patients/{patient_id}/checkin-responses/{response_id}/fhir", as_=who)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "application/fhir+json"
    resource: dict[str, Any] = json.loads(r.get_data(as_text=True))
    qr_module.QuestionnaireResponse.model_validate(resource)  # raises when not valid
    return resource


def submit(api: Api, patient_id: int, who: str, template: str, answers: dict[str, Any]) -> int:
    r = answer(api, patient_id, who, template, answers)
    assert r.status_code == 201, r.get_json()
    response_id: int = r.get_json()["id"]
    return response_id


def _by_link(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["linkId"]: item for item in resource["item"]}


def test_a_phq9_exports_with_loinc_codings_and_its_total(api: Api, world: World) -> None:
    response_id = submit(
        api, world.maria, "maria", "PHQ-9", phq9([2, 2, 1, 1, 1, 1, 1, 1, 0])["answers"]
    )
    qr = export(api, world.maria, response_id)
    assert qr["status"] == "completed"
    assert qr["questionnaire"] == "http://hl7.org/fhir/us/pco/Questionnaire/44249-1"
    assert qr["subject"] == {"reference": f"Patient/{world.maria}"}
    assert qr["author"] == qr["source"] == {"reference": f"Patient/{world.maria}"}
    assert qr["authored"].startswith("2026-11-25T15:00:00")
    items = _by_link(qr)
    assert items["14363"]["answer"] == [
        {
            "valueCoding": {
                "system": "http://loinc.org",
                "code": "LA6570-1",
                "display": "More than half the days",
            }
        }
    ]
    assert items["14372"]["answer"] == [{"valueDecimal": 10}]  # the total score item
    if convert.SOURCE_DIR.is_dir():  # every linkId is one of the source Questionnaire's
        source = json.loads((convert.SOURCE_DIR / "PHQ9.json").read_text(encoding="utf-8"))
        assert set(items) <= {i["linkId"] for i in source["item"]}


def test_every_item_type_exports_as_its_fhir_answer(api: Api, world: World) -> None:
    make_template(api, vitals())
    response_id = submit(
        api,
        world.maria,
        "priya",  # from a phone call
        "VITALS",
        {
            "weight": {"value": 176.4, "unit": "lb"},
            "glucose": {"value": 5.5, "unit": "mmol/L"},
            "bp": {"systolic": 128, "diastolic": 82},
            "feeling": 6,
            "swelling": True,
            "swelling_since": "2026-11-20",
            "breath": "walking",
            "symptoms": ["dizzy", "tired"],
            "notes": "Slept badly.",
        },
    )
    qr = export(api, world.maria, response_id, who="maria")
    riverside = world.teams["Riverside Primary Care A"].organization_id
    # codes are unique within an organization only: the URN says whose
    urn = f"urn:care-companion:organization:{riverside}:questionnaire:VITALS"
    assert qr["questionnaire"] == urn
    assert qr["author"]["type"] == "Practitioner"
    assert qr["author"]["identifier"]["value"] == str(world.users["priya"].id)
    assert qr["source"] == {"reference": f"Patient/{world.maria}"}
    items = _by_link(qr)
    ucum = "http://unitsofmeasure.org"
    assert items["weight"]["answer"] == [
        {"valueQuantity": {"value": 176.4, "unit": "[lb_av]", "system": ucum, "code": "[lb_av]"}}
    ]
    assert items["glucose"]["answer"][0]["valueQuantity"]["code"] == "mmol/L"
    assert [
        (i["linkId"], i["answer"][0]["valueQuantity"]["value"]) for i in items["bp"]["item"]
    ] == [
        ("bp.systolic", 128),
        ("bp.diastolic", 82),
    ]
    assert items["bp"]["item"][0]["answer"][0]["valueQuantity"]["code"] == "mm[Hg]"
    assert items["feeling"]["answer"] == [{"valueInteger": 6}]
    assert items["swelling"]["answer"] == [{"valueBoolean": True}]
    assert items["swelling_since"]["answer"] == [{"valueDate": "2026-11-20"}]
    assert items["notes"]["answer"] == [{"valueString": "Slept badly."}]
    assert [a["valueCoding"]["code"] for a in items["symptoms"]["answer"]] == ["dizzy", "tired"]
    assert items["breath"]["answer"][0]["valueCoding"]["display"] == "When walking"


def test_a_caregivers_answer_names_them_as_related_person(api: Api, world: World) -> None:
    response_id = submit(
        api, world.chen, "david", "POST-DISCHARGE", {"er_visit": True, "er_visit_where": "County"}
    )
    qr = export(api, world.chen, response_id, who="david")
    assert qr["questionnaire"] == "urn:care-companion:questionnaire:POST-DISCHARGE"
    assert qr["author"]["type"] == "RelatedPerson"
    assert qr["source"] == qr["author"]
    assert [i["linkId"] for i in qr["item"]] == ["er_visit", "er_visit_where"]


def test_one_response_is_only_found_under_its_own_patient(api: Api, world: World) -> None:
    response_id = submit(api, world.maria, "maria", "PHQ-2", {"44250-9": 0, "44255-8": 1})
    one = api.get(f"/patients/{world.maria}/checkin-responses/{response_id}", as_="maria")
    assert one.status_code == 200 and one.get_json()["score"] == 1
    for suffix in ("", "/fhir"):
        path = f"/patients/{world.chen}/checkin-responses/{response_id}{suffix}"
        body = assert_error(api.get(path, as_="priya"), 404)
        assert body["message"] == "No such check-in response."
        assert_error(
            api.get(f"/patients/{world.maria}/checkin-responses/99999{suffix}", as_="maria"), 404
        )
    assert_error(
        api.get(f"/patients/{world.maria}/checkin-responses/{response_id}/fhir", as_="ana"), 403
    )
    # a PHQ-2 is the first two items of the PHQ-9 Questionnaire, without a total item
    qr = export(api, world.maria, response_id, who="maria")
    assert [i["linkId"] for i in qr["item"]] == ["14363", "14364"]
