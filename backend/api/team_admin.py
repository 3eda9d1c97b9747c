"""Running a care team: its members and enrolments, managed by the team's admin
(``/care-teams/{id}/members``, ``/care-teams/{id}/enrollments``, ``/care-teams/{id}/changes``).

Who may do what: any member reads the members and the trail of changes; only the team's
admin adds, changes or removes members and enrols or un-enrols patients (403 for other
members); someone not on the team gets 404, as for every /care-teams route. The rules
(at least one admin, whom an admin may enrol, what a removal cancels) are in
backend/services/careteams.py. Enrolling and ending an enrolment are in the patient's access
log.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import Select, select

from backend import db
from backend.access import record_team_change, team_membership
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    Choice,
    Instant,
    PaginatedSelect,
    RecordId,
    error_responses,
    trimmed,
)
from backend.auth import current_user
from backend.errors import fail
from backend.models import CareTeamChange, CareTeamMember, Enrollment, Patient, User
from backend.models.careteam import TEAM_CHANGES, TeamRole
from backend.services import careteams as service

blp = Blueprint("team_admin", __name__, description="Running a care team (its admin)")

ROLES = [r.value for r in TeamRole]


class TeamMemberSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "The membership's id"})
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String(validate=Choice("TeamRole", ROLES))
    admin = ma.fields.Boolean()
    since = Instant()


class NewMemberSchema(BaseSchema):
    firebase_uid = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"[A-Za-z0-9._:-]{1,128}"),
        metadata={"description": "The person's Firebase uid (they are provisioned if new)"},
    )
    name = ma.fields.String(required=True, validate=trimmed(200))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    role = ma.fields.String(required=True, validate=Choice("TeamRole", ROLES))
    admin = ma.fields.Boolean(load_default=False)


class MemberChangeSchema(BaseSchema):
    role = ma.fields.String(validate=Choice("TeamRole", ROLES))
    admin = ma.fields.Boolean()


class EnrollmentSchema(BaseSchema):
    patient_id = RecordId(required=True)
    enrolled_at = Instant(dump_only=True)


class TeamChangeSchema(ma.Schema):
    id = ma.fields.Integer()
    action = ma.fields.String(validate=Choice("TeamChangeAction", TEAM_CHANGES))
    actor_user_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "null: the operator"}
    )
    member_user_id = ma.fields.Integer(allow_none=True)
    patient_id = ma.fields.Integer(allow_none=True)
    detail = ma.fields.String(allow_none=True)
    at = Instant()


def _member(team_id: int) -> CareTeamMember:
    """The caller's membership; another team is a 404."""
    member = team_membership(current_user(), team_id)
    if member is None:
        fail(404, "No such care team.")
    return member


def _admin(team_id: int) -> CareTeamMember:
    member = _member(team_id)
    if not member.is_admin:
        fail(403, "Only the team's admin manages its members and enrolments.")
    return member


def _their_membership(team_id: int, member_id: int) -> CareTeamMember:
    found = db.session.get(CareTeamMember, member_id)
    if found is None or found.care_team_id != team_id or found.removed_at is not None:
        fail(404, "No such member.")
    return found


def _member_view(m: CareTeamMember, user: User | None = None) -> dict[str, Any]:
    user = user or db.session.get(User, m.user_id)
    assert user is not None
    return {
        "id": m.id,
        "user_id": m.user_id,
        "name": user.name,
        "role": m.role,
        "admin": m.is_admin,
        "since": m.added_at,
    }


class _MemberPage(PaginatedSelect):
    """A page of (member, user) rows: the members and their names in one query."""

    @property
    def items(self) -> list[Any]:
        return [_member_view(m, u) for m, u in db.session.execute(self.paged())]


@blp.route("/care-teams/<int:team_id>/members")
class Members(MethodView):
    @blp.response(200, TeamMemberSchema(many=True))
    @blp.paginate(_MemberPage)
    @error_responses(blp, 404)
    def get(self, team_id: int) -> Select[CareTeamMember, User]:
        """The team's members, their roles and since when"""
        _member(team_id)
        return service.members_select([team_id])

    @blp.arguments(NewMemberSchema)
    @blp.response(201, TeamMemberSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], team_id: int) -> dict[str, Any]:
        """Put someone on the team (the admin)"""
        _admin(team_id)
        by = current_user()
        if data["firebase_uid"] == by.firebase_uid:
            fail(409, "You are on this team already; change your own membership instead.")
        member = service.add_member(
            db.session(),
            team_id,
            data["firebase_uid"],
            data["name"],
            data.get("email"),
            data["role"],
            admin=data["admin"],
            by=by,
        )
        return _member_view(member)


@blp.route("/care-teams/<int:team_id>/members/<int:member_id>")
class MemberById(MethodView):
    @blp.arguments(MemberChangeSchema)
    @blp.response(200, TeamMemberSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, data: dict[str, Any], team_id: int, member_id: int) -> dict[str, Any]:
        """Change a member's role or admin flag (the admin; a team keeps one admin)"""
        _admin(team_id)
        member = _their_membership(team_id, member_id)
        service.change_member(
            db.session(), member, current_user(), data.get("role"), data.get("admin")
        )
        return _member_view(member)

    @blp.response(204)
    @error_responses(blp, 403, 404, 409)
    def delete(self, team_id: int, member_id: int) -> None:
        """Take someone off the team: their access ends at once (the admin)"""
        _admin(team_id)
        service.remove_member(db.session(), _their_membership(team_id, member_id), current_user())


@blp.route("/care-teams/<int:team_id>/enrollments")
class Enrollments(MethodView):
    @blp.arguments(EnrollmentSchema)
    @blp.response(201, EnrollmentSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], team_id: int) -> dict[str, Any]:
        """Enrol a patient of the organization on this team (the admin)"""
        admin = _admin(team_id)
        patient_id = data["patient_id"]
        if not service.enrollable(db.session(), team_id, patient_id, admin.user_id):
            fail(404, "No such patient.")
        row = service.enroll(db.session(), team_id, patient_id, by=current_user())
        record_team_change(patient_id, current_user().id, admin.role, "enrolled_on_team")
        return {"patient_id": row.patient_id, "enrolled_at": row.enrolled_at}


@blp.route("/care-teams/<int:team_id>/enrollments/<int:patient_id>")
class EnrollmentById(MethodView):
    @blp.response(204)
    @error_responses(blp, 403, 404)
    def delete(self, team_id: int, patient_id: int) -> None:
        """End a patient's enrolment: the team's access ends at once (the admin)"""
        member = team_membership(current_user(), team_id)
        if member is None:  # learns nothing of the patient, nor of the team
            fail(404, "No such patient.")
        admin = _admin(team_id)
        row = db.session.scalar(
            select(Enrollment).where(
                Enrollment.care_team_id == team_id,
                Enrollment.patient_id == patient_id,
                Enrollment.active_clause(),
            )
        )
        if row is None or db.session.get(Patient, patient_id) is None:
            fail(404, "No such patient.")
        service.end_enrollment(db.session(), row, current_user())
        record_team_change(patient_id, current_user().id, admin.role, "enrollment_ended")


@blp.route("/care-teams/<int:team_id>/changes")
class Changes(MethodView):
    @blp.response(200, TeamChangeSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 404)
    def get(self, team_id: int) -> Select[Any]:
        """The team's trail: members and enrolments changed, by whom and when, newest first"""
        _member(team_id)
        return (
            select(CareTeamChange)
            .where(CareTeamChange.care_team_id == team_id)
            .order_by(CareTeamChange.at.desc(), CareTeamChange.id.desc())
        )
