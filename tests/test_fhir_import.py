"""Importing FHIR R4 bundles: the real Synthea bundles, the Synthea care-team bundle and the
HL7 R4 examples in ../shared/data/fhir (read from there, never copied; the tests skip when
it is absent), idempotent by source identifiers, with a report of what happened to each
resource; and a round trip import -> export that keeps Timings and medication codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from backend import db
from backend.cli.fhir import fhir_group
from backend.models import (
    AccessLogEntry,
    Appointment,
    CaregiverGrant,
    CarePlan,
    FhirLink,
    Medication,
    Patient,
)
from tests.conftest import Api, World, assert_error
from tests.shared_data import FHIR, require
from tests.test_fhir_export import by_type, everything

ROOT = Path(__file__).resolve().parent.parent


def shared_fhir() -> Path:
    require(FHIR / "synthea")
    return FHIR


def bundle(name: str) -> dict[str, Any]:
    (path,) = (shared_fhir() / "synthea").glob(f"{name}_*.json")
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def cli_import(app: Flask, path: Path, uid: str) -> str:
    result = app.test_cli_runner().invoke(
        fhir_group,
        args=["import", str(path), "--manager-uid", uid, "--time-zone", "America/New_York"],
    )
    assert result.exit_code == 0, result.output
    return result.output


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_synthea_bundles_come_in_once_and_a_second_import_creates_nothing(
    ctx: Flask, world: World
) -> None:
    folder = shared_fhir()
    output = cli_import(ctx, folder / "synthea", world.uid("david"))
    lines = output.splitlines()
    assert sum(" (created): " in line for line in lines) == 8, output
    tom = db.session.scalar(select(Patient).where(Patient.display_name.like("Tom%")))
    assert tom is not None and tom.time_zone == "America/New_York"
    (simvastatin,) = db.session.scalars(
        select(Medication).where(Medication.patient_id == tom.id)
    ).all()
    assert simvastatin.timing == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    assert simvastatin.code["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    # PRN inhalers come in as-needed; a request with no schedule and not PRN is refused by field.
    assert db.session.scalar(select(func.count()).where(Medication.as_needed.is_(True))) >= 5
    assert "[dosageInstruction[0].timing]: dosageInstruction[0].timing: no schedule" in output
    assert "[status]" in output  # stopped requests and completed plans, with their status
    plans = db.session.scalars(select(CarePlan).where(CarePlan.patient_id == tom.id)).all()
    (plan,) = plans
    assert len(plan.goals) == 5 and plan.activities and plan.conditions
    created = (count(Patient), count(Medication), count(CarePlan), count(FhirLink))

    again = cli_import(ctx, folder / "synthea", world.uid("david"))
    assert " (matched): 0 created, 0 updated" in again
    assert "created, 0 updated" in again and " 0 created" in again
    for line in again.splitlines():
        if "(matched)" in line:
            assert " 0 created, 0 updated," in line, line
    assert (count(Patient), count(Medication), count(CarePlan), count(FhirLink)) == created


def test_the_care_team_bundle_and_the_hl7_examples_are_reported_resource_by_resource(
    ctx: Flask, world: World
) -> None:
    folder = shared_fhir()
    output = cli_import(ctx, folder / "careteam", world.uid("david"))
    assert "(created)" in output and "not brought in" in output
    output = cli_import(ctx, folder / "hl7-r4-examples", world.uid("david"))
    created = count(Medication)
    assert created >= 10, output
    # Timings the engine cannot represent are refused by field, not approximated.
    assert "dosageInstruction[0].timing.repeat" in output, output
    for med in db.session.scalars(select(Medication)):
        assert med.timing is not None or med.as_needed
    again = cli_import(ctx, folder / "hl7-r4-examples", world.uid("david"))
    assert count(Medication) == created
    assert " created" not in again.replace(" 0 created", "")


def test_a_round_trip_keeps_the_timings_and_medication_codes(api: Api, world: World) -> None:
    source = bundle("Tom_Goodwin")
    r = api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=source)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert report["patient"] == "matched" and report["patient_id"] == world.maria
    assert report["counts"]["created"] >= 1 and report["ignored"]["Observation"] > 0
    exported = by_type(everything(api, world.maria, "priya"))
    requests = {
        json.dumps(m["medicationCodeableConcept"], sort_keys=True): m
        for m in exported["MedicationRequest"]
    }
    originals = [
        e["resource"]
        for e in source["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        and e["resource"]["status"] == "active"
    ]
    assert originals
    for original in originals:
        key = json.dumps(original["medicationCodeableConcept"], sort_keys=True)
        assert (
            requests[key]["dosageInstruction"][0]["timing"]
            == (original["dosageInstruction"][0]["timing"])
        )
    synthea_id = next(
        i for i in exported["Patient"][0]["identifier"] if "synthetichealth" in i["system"]
    )
    assert synthea_id["value"]  # the source's identifier travels with the patient

    again = api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=source).get_json()
    assert again["counts"]["created"] == again["counts"]["updated"] == 0
    assert again["counts"]["unchanged"] == report["counts"]["created"]


def test_a_changed_bundle_updates_what_changed(api: Api, world: World) -> None:
    source = bundle("Tom_Goodwin")
    api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=source)
    changed = copy.deepcopy(source)
    request = next(
        e["resource"]
        for e in changed["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    )
    bid = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    request["dosageInstruction"][0]["timing"] = bid
    report = api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=changed)
    outcomes = {o["resource"]: o for o in report.get_json()["outcomes"]}
    assert outcomes[f"MedicationRequest/{request['id']}"]["status"] == "updated"
    med = db.session.scalar(select(Medication).where(Medication.patient_id == world.maria))
    assert med is not None and med.timing == bid

    # Stopped at the source, its dosage dropped (as Synthea writes a stopped request): the
    # medicine we made from it stops; a new one would have been refused.
    request["status"] = "stopped"
    del request["dosageInstruction"]
    stopped = api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=changed)
    outcomes = {o["resource"]: o for o in stopped.get_json()["outcomes"]}
    assert outcomes[f"MedicationRequest/{request['id']}"]["status"] == "updated"
    db.session.expire_all()
    assert db.session.get(Medication, med.id).status == "stopped"  # type: ignore[union-attr]
    assert report.get_json()["counts"]["updated"] == 1


def test_an_unrepresentable_schedule_is_refused_by_field(api: Api, world: World) -> None:
    bundle_in = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b1f4a52-6c1e-4f7e-9d7e-1f2a3b4c5d6e",
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "every-90-min",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "Levodopa"},
                    "subject": {"reference": "Patient/x"},
                    "dosageInstruction": [
                        {"timing": {"repeat": {"frequency": 1, "period": 90, "periodUnit": "min"}}}
                    ],
                },
            }
        ],
    }
    r = api.post(f"/patients/{world.maria}/fhir-import", as_="maria", json=bundle_in)
    assert r.status_code == 200, r.get_json()
    (outcome,) = r.get_json()["outcomes"]
    assert outcome["status"] == "refused"
    assert outcome["field"] == "dosageInstruction[0].timing.repeat.periodUnit"
    assert count(Medication) == 0


def test_the_import_route_follows_the_policy_and_is_in_the_access_log(
    api: Api, world: World
) -> None:
    source = bundle("Tom_Goodwin")
    # Sam may not see María at all.
    hidden = assert_error(
        api.post(f"/patients/{world.maria}/fhir-import", as_="sam", json=source), 404
    )
    assert hidden["message"] == "No such patient."
    assert count(Medication) == 0 and count(Appointment) == 0
    assert (
        api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=source).status_code
        == 200
    )
    entries = db.session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.action == "import_fhir")
    ).all()
    assert [(e.actor_role, e.status) for e in entries] == [("nurse", 200)]
    assert count(AccessLogEntry) == 1  # one row per import, not one more for its permission
    not_a_bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    assert_error(
        api.post(f"/patients/{world.maria}/fhir-import", as_="priya", json=not_a_bundle), 422
    )


def _patient_bundle(mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:5d1c7a3e-2b4f-4c1a-9e8d-7f6a5b4c3d2e",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": mrn}],
                },
            }
        ],
    }


def test_a_bundle_for_one_record_cannot_claim_another_persons_identifier(
    api: Api, world: World
) -> None:
    maria_mrn = _patient_bundle("MRN-0001")
    assert (
        api.post(f"/patients/{world.maria}/fhir-import", as_="maria", json=maria_mrn).status_code
        == 200
    )
    # David sends María's MRN with his father's record: it stays María's.
    assert (
        api.post(f"/patients/{world.chen}/fhir-import", as_="david", json=maria_mrn).status_code
        == 200
    )
    holders = db.session.scalars(
        select(FhirLink.patient_id).where(
            FhirLink.kind == "patient", FhirLink.source_id == "MRN-0001"
        )
    ).all()
    assert holders == [world.maria]
    # An identifier longer than the column is compared as stored: importing twice is no 500.
    long_mrn = _patient_bundle("M" * 400)
    for _ in range(2):
        r = api.post(f"/patients/{world.maria}/fhir-import", as_="maria", json=long_mrn)
        assert r.status_code == 200, r.get_json()


VISIT_AND_MEDICINE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:5d1e0c2a-7b3f-4c8e-9a61-2e4f6b8d0a13",
            "resource": {
                "resourceType": "Appointment",
                "id": "cardiology",
                "status": "booked",
                "description": "Cardiology follow-up",
                "start": "2026-12-03T15:00:00Z",
                "end": "2026-12-03T15:30:00Z",
                "participant": [
                    {
                        "actor": {"reference": "Location/1", "display": "Riverside Clinic"},
                        "status": "accepted",
                    }
                ],
            },
        },
        {
            "fullUrl": "urn:uuid:5d1e0c2a-7b3f-4c8e-9a61-2e4f6b8d0a14",
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "metformin",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Metformin 500 mg"},
                "dosageInstruction": [{"timing": {"code": {"text": "BID"}}}],
            },
        },
    ],
}


def _log(action: str) -> list[tuple[str, int]]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(AccessLogEntry).where(AccessLogEntry.action == action).order_by(AccessLogEntry.id)
    )
    return [(e.actor_role, e.status) for e in rows]


def test_a_caregiver_who_manages_appointments_imports_them_and_not_the_medicines(
    api: Api, world: World
) -> None:
    """Ana manages María's appointments, not her medicines: the visit comes in, the medicine
    is refused by name of the permission, and the import is one row in María's access log."""
    path = f"/patients/{world.maria}/fhir-import"
    r = api.post(path, as_="ana", json=VISIT_AND_MEDICINE)
    assert r.status_code == 200, r.get_json()
    outcomes = {o["resource"]: (o["status"], o["reason"]) for o in r.get_json()["outcomes"]}
    assert outcomes == {
        "Appointment/cardiology": ("created", None),
        "MedicationRequest/metformin": ("refused", "you may not manage medications"),
    }
    assert count(Appointment) == 1 and count(Medication) == 0
    assert count(AccessLogEntry) == 1 and _log("import_fhir") == [("daughter", 200)]

    # Without manage_appointments she may import nothing: a 403 that says so, logged once.
    grant = db.session.scalar(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == world.users["ana"].id)
    )
    assert grant is not None
    grant.permissions = [p for p in grant.permissions if p != "manage_appointments"]
    db.session.commit()
    body = assert_error(api.post(path, as_="ana", json=VISIT_AND_MEDICINE), 403)
    assert "nothing you may import" in body["message"]
    assert count(AccessLogEntry) == 2 and _log("import_fhir")[1:] == [("daughter", 403)]
