"""Care-plan rules that need the database: one active plan per patient, and who may be
named responsible for an activity."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.access import care_team_role
from backend.clock import now
from backend.models import CaregiverGrant, CarePlan, User


def active_plan(db: Session, patient_id: int) -> CarePlan | None:
    return db.scalar(
        select(CarePlan).where(CarePlan.patient_id == patient_id, CarePlan.status == "active")
    )


def start_plan(db: Session, patient_id: int, data: dict[str, Any], by_user_id: int) -> CarePlan:
    """A new active plan; the one active before it is completed (and kept)."""
    previous = active_plan(db, patient_id)
    if previous is not None:
        revision = previous.complete(by_user_id)
        if revision is not None:
            db.add(revision)
        # Completed before the insert: the unique index on active plans sees one at a time.
        db.flush()
    plan = CarePlan(patient_id=patient_id, created_by_user_id=by_user_id, **data)
    db.add(plan)
    db.add(plan.record_creation(by_user_id))
    db.flush()
    return plan


def responsible_problems(
    db: Session,
    patient_id: int,
    activities: list[dict[str, Any]],
    before: list[dict[str, Any]],
) -> dict[int, str]:
    """Activities (by index) naming someone who has no access to the patient.

    Only new or changed assignments are checked: an activity that keeps the person it had
    does not block an unrelated edit after that person's access ended.
    """
    kept = {(a["id"], _who(a)) for a in before if "id" in a}
    problems = {}
    for index, activity in enumerate(activities):
        who = _who(activity)
        if who is None or (activity.get("id"), who) in kept:
            continue
        kind, user_id = who
        if not _has_access(db, patient_id, kind, user_id):
            problems[index] = f"User {user_id} is not a {kind.replace('_', ' ')} of this patient."
    return problems


def fill_responsible_names(db: Session, activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A person named by user_id is stored with their current name, so the plan reads well
    on its own and a name never belongs to someone else than the id."""
    out = []
    for activity in activities:
        responsible = activity["responsible"]
        user = db.get(User, responsible["user_id"]) if "user_id" in responsible else None
        if user is not None:
            activity = {**activity, "responsible": {**responsible, "name": user.name}}
        out.append(activity)
    return out


def _who(activity: dict[str, Any]) -> tuple[str, int] | None:
    responsible = activity.get("responsible") or {}
    user_id = responsible.get("user_id")
    return None if user_id is None else (responsible["kind"], user_id)


def _has_access(db: Session, patient_id: int, kind: str, user_id: int) -> bool:
    if kind == "care_team_member":
        return care_team_role(user_id, patient_id) is not None
    grant = db.scalar(
        select(CaregiverGrant.id).where(
            CaregiverGrant.patient_id == patient_id,
            CaregiverGrant.caregiver_user_id == user_id,
            CaregiverGrant.active_clause(now()),
        )
    )
    return grant is not None
