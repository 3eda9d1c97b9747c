"""Care teams: teams, members and enrolments, changed by the operator's CLI or by a team's
admin through the API.

A team always keeps at least one admin (removing or demoting the last is a 409); changes to a
team's members hold the team's row (:func:`backend.db.hold_row`), so two admins demoting or
removing each other at the same moment cannot both pass that check. Each change is in the
team's trail (``care_team_changes``; the actor is None for the CLI). Access follows at once:
a removed member or an ended enrolment no longer passes the access policy, and what was still
pending for that member about that patient is cancelled in the same transaction (the
planner's :func:`replan_for_access` asks the circles of all the team's patients again, in a
fixed number of queries). An admin enrols a patient only if the patient is already enrolled
on another team of the same organization that the admin is on (the organization holds their
consent, and the admin reaches no one new); a new patient comes through the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.db import hold_row
from backend.errors import ServiceError, fail
from backend.models import (
    CareTeam,
    CareTeamChange,
    CareTeamMember,
    Enrollment,
    Organization,
    Patient,
    User,
)
from backend.models.careteam import care_team_rows
from backend.reminders.planner import replan_for_access


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
    db: Session,
    team_id: int,
    uid: str,
    name: str,
    email: str | None,
    role: str,
    *,
    admin: bool = False,
    by: User | None = None,
) -> CareTeamMember:
    """Put the person with Firebase ``uid`` on the team (provisioned if they never signed in;
    a removed member comes back)."""
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
    member.is_admin = admin or bool(member.is_admin and member.removed_at is None)
    member.removed_at = None
    db.flush()
    _trail(db, team_id, by, "member_added", member_user_id=user.id, detail=role)
    return member


def change_member(
    db: Session, member: CareTeamMember, by: User, role: str | None, admin: bool | None
) -> CareTeamMember:
    _hold_team(db, member)
    if admin is False and member.is_admin:
        _keep_an_admin(db, member)
    if role is not None:
        member.role = role
    if admin is not None:
        member.is_admin = admin
    db.flush()
    detail = f"{member.role}{' (admin)' if member.is_admin else ''}"
    _trail(db, member.care_team_id, by, "member_changed", member.user_id, detail=detail)
    # A new role may allow less (a pharmacist hears of no care-plan change).
    replan_for_access(db, _enrolled(db, member.care_team_id), [member.user_id])
    return member


def remove_member(db: Session, member: CareTeamMember, by: User) -> None:
    """Off the team at once: their access to its patients and what was pending for them."""
    _hold_team(db, member)
    if member.is_admin:
        _keep_an_admin(db, member)
    member.removed_at = now()
    db.flush()
    _trail(db, member.care_team_id, by, "member_removed", member.user_id)
    replan_for_access(db, _enrolled(db, member.care_team_id), [member.user_id])


def _hold_team(db: Session, member: CareTeamMember) -> None:
    """One change to the team's members at a time; ``member`` as the last one left it."""
    hold_row(db, CareTeam, member.care_team_id)
    db.refresh(member)
    if member.removed_at is not None:  # taken off by the change before
        fail(404, "No such member.")


def _keep_an_admin(db: Session, member: CareTeamMember) -> None:
    admins = db.scalar(
        select(func.count()).where(
            CareTeamMember.care_team_id == member.care_team_id,
            CareTeamMember.is_admin.is_(True),
            CareTeamMember.active_clause(),
        )
    )
    if (admins or 0) <= 1:
        fail(409, "A team keeps at least one admin: make someone else admin first.")


def _enrolled(db: Session, team_id: int) -> list[int]:
    return list(
        db.scalars(
            select(Enrollment.patient_id).where(
                Enrollment.care_team_id == team_id, Enrollment.active_clause()
            )
        )
    )


def enrollable(db: Session, team_id: int, patient_id: int, admin_user_id: int) -> bool:
    """An admin may enrol a patient they already look after: one enrolled on another team
    of the same organization that the admin is on (the organization holds the consent; the
    admin gains no patient they could not see before)."""
    team = db.get(CareTeam, team_id)
    if team is None:
        return False
    return (
        db.scalar(
            care_team_rows()
            .join(CareTeam, CareTeam.id == Enrollment.care_team_id)
            .where(
                Enrollment.patient_id == patient_id,
                Enrollment.care_team_id != team_id,
                CareTeamMember.user_id == admin_user_id,
                CareTeam.organization_id == team.organization_id,
            )
            .limit(1)
        )
        is not None
    )


def end_enrollment(db: Session, enrollment: Enrollment, by: User) -> None:
    """The team stops looking after the patient: its members' access ends at once, with what
    was pending for them about the patient."""
    enrollment.ended_at = now()
    db.flush()
    _trail(db, enrollment.care_team_id, by, "enrollment_ended", patient_id=enrollment.patient_id)
    members = db.scalars(
        select(CareTeamMember.user_id).where(CareTeamMember.care_team_id == enrollment.care_team_id)
    )
    replan_for_access(db, [enrollment.patient_id], list(members))


def _trail(
    db: Session,
    team_id: int,
    by: User | None,
    action: str,
    member_user_id: int | None = None,
    *,
    patient_id: int | None = None,
    detail: str | None = None,
) -> None:
    db.add(
        CareTeamChange(
            care_team_id=team_id,
            actor_user_id=by.id if by is not None else None,
            action=action,
            member_user_id=member_user_id,
            patient_id=patient_id,
            detail=detail,
            at=now(),
        )
    )


def enroll(db: Session, team_id: int, patient_id: int, by: User | None = None) -> Enrollment:
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
    if row.ended_at is not None:
        row.enrolled_at = now()  # "on the team since" counts from the return
    row.ended_at = None
    db.flush()
    _trail(db, team_id, by, "patient_enrolled", patient_id=patient_id)
    return row


# -- reading teams: the one place the API and the FHIR export ask ----------------------


def members_select(team_ids: Sequence[int]) -> Select[CareTeamMember, User]:
    """The active members of these teams with their users, in the order they joined: one
    query for any number of teams and members (a page of it for the members list)."""
    return (
        select(CareTeamMember, User)
        .join(User, User.id == CareTeamMember.user_id)
        .where(CareTeamMember.care_team_id.in_(team_ids), CareTeamMember.active_clause())
        .order_by(CareTeamMember.id)
    )


def members_by_team(
    db: Session, team_ids: Sequence[int]
) -> dict[int, list[tuple[CareTeamMember, User]]]:
    """team id -> its active members and their users (:func:`members_select`)."""
    found: dict[int, list[tuple[CareTeamMember, User]]] = {t: [] for t in team_ids}
    if team_ids:
        for member, user in db.execute(members_select(team_ids)):
            found[member.care_team_id].append((member, user))
    return found


def patient_teams(db: Session, patient_id: int) -> list[tuple[CareTeam, Organization, datetime]]:
    """The teams looking after the patient (active enrolments): team, organization, and
    since when."""
    rows = db.execute(
        select(CareTeam, Organization, Enrollment.enrolled_at)
        .join(Enrollment, Enrollment.care_team_id == CareTeam.id)
        .join(Organization, Organization.id == CareTeam.organization_id)
        .where(Enrollment.patient_id == patient_id, Enrollment.active_clause())
        .order_by(CareTeam.id)
    )
    return [(team, org, since) for team, org, since in rows]
