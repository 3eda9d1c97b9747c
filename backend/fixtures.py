"""Load the demo people (``fixtures/demo.json``) idempotently: loading twice adds nothing."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.careplans import CarePlanCreateSchema
from backend.api.medications import MedicationSchema
from backend.clock import now
from backend.models import Appointment, CaregiverGrant, CareTeam, Medication, Patient, User
from backend.models.profile import PROFILE_FIELDS, ROUTINE_FIELDS
from backend.services.appointments import book
from backend.services.careplans import active_plan, fill_responsible_names, start_plan
from backend.services.careteams import add_member, add_team, enroll

DEFAULT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "demo.json"
_USER_FIELDS = ("preferred_name", *PROFILE_FIELDS)


def _profile(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = {k: data[k] for k in fields if k in data}
    for k in ROUTINE_FIELDS:
        if k in out:
            out[k] = time.fromisoformat(out[k])
    return out


def load_fixtures(
    db: Session, path: Path = DEFAULT_FIXTURES, *, care_data: bool = True
) -> dict[str, Any]:
    """Returns {"users": {persona: User}, "patients": {key: Patient}, "teams": {name: CareTeam}}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    teams: dict[str, CareTeam] = {}
    for org_data in data["organizations"]:
        for name in org_data["teams"]:
            teams[name] = add_team(db, org_data["name"], name)

    users: dict[str, User] = {}
    for u in data["users"]:
        user = db.scalar(select(User).where(User.firebase_uid == u["uid"]))
        if user is None:
            user = User(firebase_uid=u["uid"], email=u["email"], display_name=u["name"])
            for k, v in _profile(u, _USER_FIELDS).items():
                setattr(user, k, v)
            db.add(user)
            db.flush()
        users[u["persona"]] = user

    patients: dict[str, Patient] = {}
    for p in data["patients"]:
        patients[p["key"]] = _patient(db, p, users)

    for c in data["caregivers"]:
        patient, caregiver = patients[c["patient"]], users[c["caregiver"]]
        if not db.scalar(
            select(CaregiverGrant.id).where(
                CaregiverGrant.patient_id == patient.id,
                CaregiverGrant.caregiver_user_id == caregiver.id,
            )
        ):
            db.add(
                CaregiverGrant(
                    patient_id=patient.id,
                    caregiver_user_id=caregiver.id,
                    relationship=c["relationship"],
                    permissions=sorted(c["permissions"]),
                    granted_by_user_id=users[c["granted_by"]].id,
                )
            )
    for m in data["team_members"]:
        user = users[m["user"]]
        add_member(
            db,
            teams[m["team"]].id,
            user.firebase_uid,
            user.name,
            user.email,
            m["role"],
            admin=bool(m.get("admin")),
        )
    for e in data["enrollments"]:
        enroll(db, teams[e["team"]].id, patients[e["patient"]].id)
    db.flush()
    if not care_data:  # just the people: tests build their own medicines and visits
        return {"users": users, "patients": patients, "teams": teams}
    _medications(db, data.get("medications", []), users, patients)
    _appointments(db, data.get("appointments", []), users, patients)
    _care_plans(db, data.get("care_plans", []), users, patients)
    db.flush()
    return {"users": users, "patients": patients, "teams": teams}


def _local_date(patient: Patient, in_days: int) -> date:
    return (now().astimezone(ZoneInfo(patient.time_zone)) + timedelta(days=in_days)).date()


def _medications(
    db: Session, items: list[dict[str, Any]], users: dict[str, User], patients: dict[str, Patient]
) -> None:

    for item in items:
        patient = patients[item["patient"]]
        if db.scalar(
            select(Medication.id).where(
                Medication.patient_id == patient.id, Medication.name == item["name"]
            )
        ):
            continue
        fields = {k: v for k, v in item.items() if k not in ("patient", "start_in_days")}
        data = MedicationSchema().load(fields)  # the same checks as the API, timing included
        data["start_date"] = _local_date(patient, item.get("start_in_days", 0))
        creator = patient.user_id or patient.created_by_user_id
        db.add(
            Medication(
                patient_id=patient.id,
                created_by_user_id=creator,
                home_time_zone=patient.time_zone,
                **data,
            )
        )


def _appointments(
    db: Session, items: list[dict[str, Any]], users: dict[str, User], patients: dict[str, Patient]
) -> None:

    for item in items:
        patient = patients[item["patient"]]
        if db.scalar(
            select(Appointment.id).where(
                Appointment.patient_id == patient.id, Appointment.title == item["title"]
            )
        ):
            continue
        zone = ZoneInfo(patient.time_zone)
        start = datetime.combine(
            _local_date(patient, item["in_days"]), time.fromisoformat(item["at"]), tzinfo=zone
        )
        data: dict[str, Any] = {
            k: item[k]
            for k in (
                "title",
                "type",
                "location",
                "video_url",
                "preparation_notes",
                "transport_needed",
            )
            if k in item
        }
        data.update(start_at=start, end_at=start + timedelta(minutes=item["minutes"]))
        if "attendee" in item:
            data["attendee_user_id"] = users[item["attendee"]].id
        book(db, patient, users[item["created_by"]], data)


def _care_plans(
    db: Session, items: list[dict[str, Any]], users: dict[str, User], patients: dict[str, Patient]
) -> None:

    for item in items:
        patient = patients[item["patient"]]
        if active_plan(db, patient.id) is not None:
            continue
        body = {k: v for k, v in item.items() if k not in ("patient", "by")}
        for goal in body.get("goals", []):
            if "due_in_days" in goal:
                goal["due_date"] = _local_date(patient, goal.pop("due_in_days")).isoformat()
        for activity in body.get("activities", []):
            persona = activity["responsible"].pop("persona", None)
            if persona:
                activity["responsible"]["user_id"] = users[persona].id
        data = CarePlanCreateSchema().load(body)
        data["activities"] = fill_responsible_names(db, data["activities"])
        start_plan(db, patient.id, data, users[item["by"]].id)


def _patient(db: Session, p: dict[str, Any], users: dict[str, User]) -> Patient:
    if "own_login" in p:
        owner = users[p["own_login"]]
        patient = db.scalar(select(Patient).where(Patient.user_id == owner.id))
        if patient is None:
            patient = Patient(user_id=owner.id, created_by_user_id=owner.id)
            patient.copy_profile_from(owner)
    else:
        manager = users[p["managed_by"]]
        patient = db.scalar(
            select(Patient).where(
                Patient.created_by_user_id == manager.id,
                Patient.display_name == p["display_name"],
                Patient.user_id.is_(None),
            )
        )
        if patient is None:
            patient = Patient(created_by_user_id=manager.id)
            for k, v in _profile(p, PROFILE_FIELDS).items():
                setattr(patient, k, v)
    if patient.id is None:
        patient.display_name = p["display_name"]
        patient.birth_date = _date(p.get("birth_date"))
        db.add(patient)
        db.flush()
        if "managed_by" in p:
            manager = users[p["managed_by"]]
            db.add(
                CaregiverGrant(
                    patient_id=patient.id,
                    caregiver_user_id=manager.id,
                    relationship=p["relationship"],
                    permissions=[],
                    is_managing=True,
                    granted_by_user_id=manager.id,
                )
            )
    return patient


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
