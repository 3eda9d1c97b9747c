"""Load the demo people (``fixtures/demo.json``) idempotently: loading twice adds nothing."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import CaregiverGrant, CareTeam, Patient, User
from backend.models.profile import PROFILE_FIELDS, ROUTINE_FIELDS
from backend.services.careteams import add_member, add_team, enroll

DEFAULT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "demo.json"
_USER_FIELDS = ("preferred_name", *PROFILE_FIELDS)


def _profile(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = {k: data[k] for k in fields if k in data}
    for k in ROUTINE_FIELDS:
        if k in out:
            out[k] = time.fromisoformat(out[k])
    return out


def load_fixtures(db: Session, path: Path = DEFAULT_FIXTURES) -> dict[str, Any]:
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
        add_member(db, teams[m["team"]].id, user.firebase_uid, user.name, user.email, m["role"])
    for e in data["enrollments"]:
        enroll(db, teams[e["team"]].id, patients[e["patient"]].id)
    db.flush()
    return {"users": users, "patients": patients, "teams": teams}


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
