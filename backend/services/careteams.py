"""Operator actions on care teams: teams, members, enrollments."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.errors import ServiceError
from backend.models import CareTeam, CareTeamMember, Enrollment, Organization, Patient, User


def add_team(db: Session, org_name: str, team_name: str) -> CareTeam:
    org = db.scalar(select(Organization).where(Organization.name == org_name))
    if org is None:
        org = Organization(name=org_name)
        db.add(org)
        db.flush()
    team = db.scalar(
        select(CareTeam).where(CareTeam.organization_id == org.id, CareTeam.name == team_name)
    )
    if team is None:
        team = CareTeam(organization_id=org.id, name=team_name)
        db.add(team)
        db.flush()
    return team


def add_member(
    db: Session, team_id: int, uid: str, name: str, email: str | None, role: str
) -> CareTeamMember:
    if db.get(CareTeam, team_id) is None:
        raise ServiceError(404, f"no care team {team_id}")
    user = db.scalar(select(User).where(User.firebase_uid == uid))
    if user is None:
        user = User(firebase_uid=uid, display_name=name, email=email)
        db.add(user)
        db.flush()
    member = db.scalar(
        select(CareTeamMember).where(
            CareTeamMember.care_team_id == team_id, CareTeamMember.user_id == user.id
        )
    )
    if member is None:
        member = CareTeamMember(care_team_id=team_id, user_id=user.id, role=role)
        db.add(member)
    member.role = role
    member.removed_at = None
    db.flush()
    return member


def enroll(db: Session, team_id: int, patient_id: int) -> Enrollment:
    if db.get(CareTeam, team_id) is None:
        raise ServiceError(404, f"no care team {team_id}")
    if db.get(Patient, patient_id) is None:
        raise ServiceError(404, f"no patient {patient_id}")
    row = db.scalar(
        select(Enrollment).where(
            Enrollment.care_team_id == team_id, Enrollment.patient_id == patient_id
        )
    )
    if row is None:
        row = Enrollment(care_team_id=team_id, patient_id=patient_id)
        db.add(row)
    row.ended_at = None
    db.flush()
    return row
