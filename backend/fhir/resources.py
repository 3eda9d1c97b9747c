"""Our records as FHIR R4 resources (JSON dicts). Pure: no Flask, no database.

Ids are our row ids (FHIR ids are per resource type), so a resource keeps its id across
exports; a Goal or Condition inside a care plan is ``<plan id>-<item id>``. Every resource
also carries an ``identifier`` in our own system (``urn:care-companion:<kind>``). References
are relative (``Patient/7``) and resolve against the entries of the bundle they are in; a
person who is not in the bundle is named by ``display`` only, never referenced.

Mappings (ours -> FHIR):

* medicine -> MedicationRequest ``intent: plan`` (the patient's list, not an order);
  ``status`` active / on-hold (paused) / stopped; ``medicationCodeableConcept`` the imported
  code, else the name as text; ``dosageInstruction[0].timing`` the Timing exactly as stored;
  ``asNeededBoolean``; PRN limit as ``maxDosePerPeriod`` per 1 d.
* dose log -> MedicationAdministration: taken ``completed``, skipped ``not-done`` (the reason
  in ``statusReason``), ``effectiveDateTime`` when taken, ``request`` the MedicationRequest.
* appointment -> Appointment: booked / cancelled / fulfilled (completed) / noshow (no_show).
* encounter -> Encounter ``class`` IMP (hospital admission), EMER (ER visit), OBSENC
  (observation); ``finished`` once it has an end.
* message -> Communication (``payload.contentString``, thread subject as ``topic``).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, Protocol

from backend.models import (
    Appointment,
    CaregiverGrant,
    CarePlan,
    CareTeam,
    Encounter,
    Medication,
    Message,
    MessageThread,
    Patient,
    User,
)
from backend.models.appointment import moment

URN = "urn:care-companion"
ROLE_SYSTEM = f"{URN}:care-team-role"
RELATIONSHIP_SYSTEM = f"{URN}:relationship"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BCP47 = "urn:ietf:bcp:47"

Resource = dict[str, Any]


def identifier(kind: str, value: object) -> list[dict[str, str]]:
    return [{"system": f"{URN}:{kind}", "value": str(value)}]


def ref(resource_type: str, rid: object) -> dict[str, str]:
    return {"reference": f"{resource_type}/{rid}"}


def _instant(value: datetime) -> str:
    return value.isoformat()


def patient(row: Patient, extra_identifiers: list[dict[str, str]]) -> Resource:
    found: Resource = {
        "resourceType": "Patient",
        "id": str(row.id),
        "identifier": identifier("patient", row.id) + extra_identifiers,
        "active": True,
        "name": [{"text": row.display_name}],
        "communication": [
            {"language": {"coding": [{"system": BCP47, "code": row.language}]}, "preferred": True}
        ],
    }
    if row.birth_date is not None:
        found["birthDate"] = row.birth_date.isoformat()
    return found


def related_person(grant: CaregiverGrant, user: User | None, patient_id: int) -> Resource:
    found: Resource = {
        "resourceType": "RelatedPerson",
        "id": str(grant.id),
        "identifier": identifier("caregiver-grant", grant.id),
        "active": grant.is_active(),
        "patient": ref("Patient", patient_id),
        "relationship": [
            {
                "coding": [{"system": RELATIONSHIP_SYSTEM, "code": grant.relationship}],
                "text": grant.relationship.replace("_", " "),
            }
        ],
    }
    if user is not None:
        found["name"] = [{"text": user.name}]
    return found


def practitioner(user: User) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": str(user.id),
        "identifier": identifier("user", user.id),
        "name": [{"text": user.name}],
    }


def care_team(team: CareTeam, organization: str, members: list[tuple[int, str]]) -> Resource:
    """A team and its active members as (user id, role); the members are Practitioners."""
    found: Resource = {
        "resourceType": "CareTeam",
        "id": str(team.id),
        "identifier": identifier("care-team", team.id),
        "status": "active",
        "name": f"{team.name} ({organization})",
    }
    if members:  # FHIR has no empty lists
        found["participant"] = [
            {
                "role": [{"coding": [{"system": ROLE_SYSTEM, "code": role}], "text": role}],
                "member": ref("Practitioner", user_id),
            }
            for user_id, role in members
        ]
    return found


_GOAL_STATUS = {
    "proposed": "proposed",
    "active": "active",
    "achieved": "completed",
    "cancelled": "cancelled",
}
_ACTIVITY_STATUS = {"open": "in-progress", "done": "completed", "cancelled": "cancelled"}


def condition_id(plan_id: int, condition: dict[str, Any]) -> str:
    """Conditions carry no id of their own: the id is their plan and a digest of what they
    say, so the same condition keeps its id across exports."""
    code = condition.get("code") or {}
    key = f"{condition['text']}|{code.get('system', '')}|{code.get('code', '')}"
    return f"{plan_id}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def condition(plan: CarePlan, item: dict[str, Any]) -> Resource:
    concept: Resource = {"text": item["text"]}
    if item.get("code"):
        concept["coding"] = [{k: v for k, v in item["code"].items() if v}]
    status = "active" if item.get("status", "active") == "active" else "resolved"
    return {
        "resourceType": "Condition",
        "id": condition_id(plan.id, item),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": concept,
        "subject": ref("Patient", plan.patient_id),
    }


def goal(plan: CarePlan, item: dict[str, Any]) -> Resource:
    found: Resource = {
        "resourceType": "Goal",
        "id": f"{plan.id}-{item['id']}",
        "lifecycleStatus": _GOAL_STATUS.get(item.get("status", "proposed"), "proposed"),
        "description": {"text": item["description"]},
        "subject": ref("Patient", plan.patient_id),
    }
    target = item.get("target") or {}
    if target.get("text"):
        found["note"] = [{"text": target["text"]}]
    if item.get("due_date"):
        found["target"] = [{"dueDate": item["due_date"]}]
    return found


def care_plan(plan: CarePlan) -> Resource:
    found: Resource = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "identifier": identifier("care-plan", plan.id),
        "status": "active" if plan.is_active else "completed",
        "intent": "plan",
        "title": plan.title,
        "subject": ref("Patient", plan.patient_id),
        "created": _instant(plan.created_at),
        "period": {"start": _instant(plan.created_at)},
    }
    if plan.completed_at is not None:
        found["period"]["end"] = _instant(plan.completed_at)
    if plan.instructions:
        found["description"] = plan.instructions
    if plan.conditions:
        found["addresses"] = [ref("Condition", condition_id(plan.id, c)) for c in plan.conditions]
    if plan.goals:
        found["goal"] = [ref("Goal", f"{plan.id}-{g['id']}") for g in plan.goals]
    if plan.activities:
        found["activity"] = [_activity(a) for a in plan.activities]
    return found


def _activity(item: dict[str, Any]) -> Resource:
    detail: Resource = {
        "status": _ACTIVITY_STATUS.get(item.get("status", "open"), "in-progress"),
        "description": item["description"],
    }
    who = (item.get("responsible") or {}).get("name")
    if who:
        detail["performer"] = [{"display": who}]
    activity: Resource = {"detail": detail}
    if item.get("frequency"):
        activity["progress"] = [{"text": f"Frequency: {item['frequency']}"}]
    return activity


_MED_STATUS = {"active": "active", "paused": "on-hold", "stopped": "stopped"}


def medication_concept(med: Medication) -> Resource:
    return med.code if med.code else {"text": med.name}


def medication_request(med: Medication) -> Resource:
    dosage: Resource = {"sequence": 1, "asNeededBoolean": bool(med.as_needed)}
    if med.instructions:
        dosage["text"] = med.instructions
    if med.timing is not None:
        dosage["timing"] = med.timing
    if med.route:
        dosage["route"] = {"text": med.route}
    dosage["doseAndRate"] = [{"doseQuantity": {"value": med.dose_amount}}]
    if med.as_needed and med.prn_max_per_24h:
        dosage["maxDosePerPeriod"] = {
            "numerator": {"value": med.prn_max_per_24h},
            "denominator": {
                "value": 1,
                "unit": "d",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        }
    found: Resource = {
        "resourceType": "MedicationRequest",
        "id": str(med.id),
        "identifier": identifier("medication", med.id),
        "status": _MED_STATUS.get(med.status, "unknown"),
        "intent": "plan",
        "medicationCodeableConcept": medication_concept(med),
        "subject": ref("Patient", med.patient_id),
        "authoredOn": _instant(med.created_at),
        "dosageInstruction": [dosage],
        "dispenseRequest": {"validityPeriod": _period(med.start_date, med.end_date)},
    }
    if med.prescriber:
        found["requester"] = {"display": med.prescriber}
    if med.reason:
        found["reasonCode"] = [{"text": med.reason}]
    return found


def _period(start: date, end: date | None) -> Resource:
    found = {"start": start.isoformat()}
    if end is not None:
        found["end"] = end.isoformat()
    return found


class LoggedDose(Protocol):
    """What a MedicationAdministration needs of a dose log (a row or the columns of one)."""

    id: int
    patient_id: int
    status: str
    taken_at: datetime
    skip_reason: str | None


def medication_administration(log: LoggedDose, med: Medication) -> Resource:
    found: Resource = {
        "resourceType": "MedicationAdministration",
        "id": str(log.id),
        "identifier": identifier("dose-log", log.id),
        "status": "completed" if log.status == "taken" else "not-done",
        "medicationCodeableConcept": medication_concept(med),
        "subject": ref("Patient", log.patient_id),
        "effectiveDateTime": _instant(log.taken_at),
        "request": ref("MedicationRequest", med.id),
    }
    if log.status != "taken":
        found["statusReason"] = [{"text": log.skip_reason or "skipped"}]
    return found


_APPOINTMENT_STATUS = {
    "booked": "booked",
    "cancelled": "cancelled",
    "completed": "fulfilled",
    "no_show": "noshow",
}


def appointment(row: Appointment) -> Resource:
    participants: list[Resource] = [
        {"actor": ref("Patient", row.patient_id), "required": "required", "status": "accepted"}
    ]
    if row.provider_name:
        participants.append({"actor": {"display": row.provider_name}, "status": "accepted"})
    found: Resource = {
        "resourceType": "Appointment",
        "id": str(row.id),
        "identifier": identifier("appointment", row.id),
        "status": _APPOINTMENT_STATUS.get(row.status, "booked"),
        "appointmentType": {"text": row.type.replace("_", " ")},
        "description": row.title,
        "start": moment(row.start_at, row.time_zone),
        "end": moment(row.end_at, row.time_zone),
        "created": _instant(row.created_at),
        "participant": participants,
    }
    if row.preparation_notes:
        found["patientInstruction"] = row.preparation_notes
    return found


_ENCOUNTER_CLASS = {
    "hospital_admission": ("IMP", "inpatient encounter"),
    "er_visit": ("EMER", "emergency"),
    "observation": ("OBSENC", "observation encounter"),
}


def encounter(row: Encounter) -> Resource:
    code, display = _ENCOUNTER_CLASS[row.kind]
    period = {"start": _instant(row.start_at)}
    if row.end_at is not None:
        period["end"] = _instant(row.end_at)
    found: Resource = {
        "resourceType": "Encounter",
        "id": str(row.id),
        "identifier": identifier("encounter", row.id),
        "status": "finished" if row.end_at is not None else "in-progress",
        "class": {"system": ACT_CODE, "code": code, "display": display},
        "subject": ref("Patient", row.patient_id),
        "period": period,
        "serviceProvider": {"display": row.facility},
    }
    if row.reason:
        found["reasonCode"] = [{"text": row.reason}]
    return found


def communication(message: Message, thread: MessageThread) -> Resource:
    sender: Resource
    if message.author_role == "self":
        sender = ref("Patient", thread.patient_id)
    else:
        sender = {"display": message.author_label or "care team"}
    return {
        "resourceType": "Communication",
        "id": str(message.id),
        "identifier": identifier("message", message.id),
        "status": "completed",
        "subject": ref("Patient", thread.patient_id),
        "topic": {"text": thread.subject},
        "sent": _instant(message.created_at),
        "sender": sender,
        "payload": [{"contentString": message.body}],
    }
