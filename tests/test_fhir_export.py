"""María's record as a FHIR R4 Bundle: every resource validates with fhir.resources (R4B
models), every reference resolves inside the bundle, ids stay the same from one export to
the next, and each reader gets what the JSON API would show them and nothing more."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend import db
from backend.models import AccessLogEntry
from tests.conftest import Api, Clock, World, assert_error
from tests.test_appointments import book
from tests.test_checkin_fhir import submit
from tests.test_checkins import phq9
from tests.test_medications import BID_WITH_MEALS, add_med, log
from tests.test_messages import start

r4b = pytest.importorskip("fhir.resources.R4B")


def validate(resource: dict[str, Any]) -> None:
    """Raises when the resource is not valid FHIR (R4B models; R4 for these resources)."""
    r4b.get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def everything(api: Api, patient_id: int, who: str) -> dict[str, Any]:
    r = api.get(f"/fhir/Patient/{patient_id}/$everything", as_=who)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "application/fhir+json"
    bundle: dict[str, Any] = json.loads(r.get_data(as_text=True))
    validate(bundle)
    for entry in bundle["entry"]:
        validate(entry["resource"])
    assert_references_resolve(bundle)
    return bundle


def references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def assert_references_resolve(bundle: dict[str, Any]) -> None:
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    for entry in bundle["entry"]:
        assert entry["fullUrl"].endswith(
            f"/fhir/{entry['resource']['resourceType']}/{entry['resource']['id']}"
        )
        missing = set(references(entry["resource"])) - present
        assert not missing, f"{entry['fullUrl']} points outside the bundle: {missing}"


def by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


def marias_record(api: Api, world: World, clock: Clock) -> dict[str, int]:
    """A medicine with a Timing and its doses, a visit, a plan, a PHQ-9, a message, an ER
    visit: one of each thing an export carries."""
    med = add_med(api, world.maria)
    for day in range(3):
        logged = log(api, world.maria, med["id"], "maria", f"dose-{day:04d}", clock())
        assert logged.status_code == 201, logged.get_json()
        clock.advance(days=1)
    skipped = log(api, world.maria, med["id"], "ana", "skipped-0001", clock(), status="skipped")
    assert skipped.status_code == 201, skipped.get_json()
    visit = book(api, world.maria)
    plan = api.post(
        f"/patients/{world.maria}/care-plans",
        as_="priya",
        json={
            "title": "Diabetes",
            "conditions": [{"text": "Type 2 diabetes"}],
            "goals": [{"description": "HbA1c below 7%", "target": {"text": "HbA1c < 7%"}}],
            "activities": [{"description": "Walk", "responsible": {"kind": "patient"}}],
        },
    )
    assert plan.status_code == 201, plan.get_json()
    answered = submit(api, world.maria, "maria", "PHQ-9", phq9([1] * 9)["answers"])
    thread = start(api, world.maria)
    er = api.post(
        f"/patients/{world.maria}/encounters",
        as_="priya",
        json={
            "kind": "er_visit",
            "facility": "Riverside General ER",
            "start": (clock() - timedelta(days=1)).isoformat(),
            "end": clock().isoformat(),
            "reason": "Low blood sugar",
        },
    )
    assert er.status_code == 201, er.get_json()
    return {
        "medication": med["id"],
        "appointment": visit["id"],
        "plan": plan.get_json()["id"],
        "answer": answered,
        "thread": thread["id"],
        "encounter": er.get_json()["id"],
    }


def test_marias_own_export_holds_her_whole_record_and_validates(
    api: Api, world: World, clock: Clock
) -> None:
    ids = marias_record(api, world, clock)
    bundle = everything(api, world.maria, "maria")
    assert bundle["type"] == "searchset"
    found = by_type(bundle)
    assert [p["id"] for p in found["Patient"]] == [str(world.maria)]
    (request,) = found["MedicationRequest"]
    assert request["dosageInstruction"][0]["timing"] == BID_WITH_MEALS  # exactly as given
    assert request["id"] == str(ids["medication"])
    statuses = sorted(a["status"] for a in found["MedicationAdministration"])
    assert statuses == ["completed"] * 3 + ["not-done"]
    assert [a["id"] for a in found["Appointment"]] == [str(ids["appointment"])]
    assert found["CarePlan"][0]["title"] == "Diabetes"
    assert len(found["Goal"]) == len(found["Condition"]) == 1
    assert [q["id"] for q in found["QuestionnaireResponse"]] == [str(ids["answer"])]
    assert found["Communication"][0]["payload"][0]["contentString"]
    assert found["Encounter"][0]["class"]["code"] == "EMER"
    assert {t["name"] for t in found["CareTeam"]}
    assert found["Practitioner"] and found["RelatedPerson"]  # Priya's team; Ana's grant

    # The same ids next time: a receiving system can update rather than duplicate.
    again = everything(api, world.maria, "maria")
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]
    # María's own reads are not in her access log.
    exports = select(AccessLogEntry).where(AccessLogEntry.action == "export_fhir")
    assert not db.session.scalars(exports).all()


def test_ana_gets_what_her_grant_allows_and_it_is_in_the_access_log(
    api: Api, world: World, clock: Clock
) -> None:
    marias_record(api, world, clock)
    found = by_type(everything(api, world.maria, "ana"))
    assert "MedicationRequest" in found and "Appointment" in found
    assert "QuestionnaireResponse" not in found  # Ana has no view_checkins
    assert [r["id"] for r in found["RelatedPerson"]] == [
        str(g) for g in _grant_ids(api, world, "ana")
    ]  # her own grant only: the list of caregivers is the patient's side's

    grant_id = _grant_ids(api, world, "ana")[0]
    permissions = ["view_care_plan", "view_appointments", "message_care_team"]
    r = api.patch(
        f"/patients/{world.maria}/caregivers/{grant_id}",
        as_="maria",
        json={"permissions": permissions},
    )
    assert r.status_code == 200, r.get_json()
    found = by_type(everything(api, world.maria, "ana"))
    assert "MedicationRequest" not in found and "MedicationAdministration" not in found
    assert "Appointment" in found and "CarePlan" in found

    log_rows = db.session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.action == "export_fhir")
    ).all()
    assert [(e.actor_role, e.status, e.patient_id) for e in log_rows] == [
        ("daughter", 200, world.maria)
    ] * 2


def _grant_ids(api: Api, world: World, persona: str) -> list[int]:
    rows = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    uid = world.users[persona].id
    return [g["id"] for g in rows if g["caregiver_user_id"] == uid and g["status"] == "active"]


def test_an_outsider_gets_the_same_404_as_for_no_patient_at_all(
    api: Api, world: World, clock: Clock
) -> None:
    ids = marias_record(api, world, clock)
    hidden = assert_error(api.get(f"/fhir/Patient/{world.maria}/$everything", as_="sam"), 404)
    absent = assert_error(api.get("/fhir/Patient/987654/$everything", as_="sam"), 404)
    assert hidden["message"] == absent["message"] == "No such patient."
    for path in (f"MedicationRequest/{ids['medication']}", f"Patient/{world.maria}"):
        hidden = assert_error(api.get(f"/fhir/{path}", as_="omar"), 404)
        absent = assert_error(api.get(f"/fhir/{path.split('/')[0]}/987654", as_="omar"), 404)
        assert hidden["message"] == absent["message"] == "No such resource."
        assert "Mar" not in json.dumps(hidden)


def test_single_resources_by_id_validate_and_follow_the_policy(
    api: Api, world: World, clock: Clock
) -> None:
    ids = marias_record(api, world, clock)
    bundle = everything(api, world.maria, "priya")
    exported = {(e["resource"]["resourceType"], e["resource"]["id"]): e for e in bundle["entry"]}
    for kind, rid in (
        ("Patient", world.maria),
        ("MedicationRequest", ids["medication"]),
        ("Appointment", ids["appointment"]),
        ("CarePlan", ids["plan"]),
        ("QuestionnaireResponse", ids["answer"]),
        ("Encounter", ids["encounter"]),
    ):
        r = api.get(f"/fhir/{kind}/{rid}", as_="priya")
        assert r.status_code == 200, r.get_data(as_text=True)
        resource = json.loads(r.get_data(as_text=True))
        validate(resource)
        assert resource == exported[(kind, str(rid))]["resource"]
    for kind in ("MedicationAdministration", "Communication"):
        some = next(k for k in exported if k[0] == kind)
        r = api.get(f"/fhir/{kind}/{some[1]}", as_="priya")
        assert json.loads(r.get_data(as_text=True)) == exported[some]["resource"]
    # Ana sees María but not her check-ins: a 403, as in the JSON API.
    assert_error(api.get(f"/fhir/QuestionnaireResponse/{ids['answer']}", as_="ana"), 403)
    assert_error(api.get(f"/fhir/Observation/{ids['answer']}", as_="priya"), 404)


def test_a_care_team_is_read_by_its_members_and_the_patients_it_looks_after(
    api: Api, world: World
) -> None:
    bundle = by_type(everything(api, world.maria, "maria"))
    team_id = bundle["CareTeam"][0]["id"]
    for who in ("priya", "maria", "ana"):
        r = api.get(f"/fhir/CareTeam/{team_id}", as_=who)
        assert r.status_code == 200, r.get_data(as_text=True)
        team = json.loads(r.get_data(as_text=True))
        validate(team)
        contained = {f"#{c['id']}" for c in team["contained"]}
        assert {p["member"]["reference"] for p in team["participant"]} <= contained
    for who in ("sam", "omar"):
        hidden = assert_error(api.get(f"/fhir/CareTeam/{team_id}", as_=who), 404)
        assert hidden["message"] == "No such resource."
    assert_error(api.get("/fhir/CareTeam/987654", as_="priya"), 404)
    reads = db.session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.action == "export_fhir")
    ).all()
    assert {e.actor_role for e in reads} == {"daughter"}  # Ana's read is in María's log
