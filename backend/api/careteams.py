"""Care teams: a member's own teams and panel, and a patient's view of their team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import Select, select

from backend import db
from backend.access import Action, authorize, record_panel_access, team_membership
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    BirthDate,
    Choice,
    Instant,
    PaginatedSelect,
    error_responses,
)
from backend.auth import current_user
from backend.errors import fail
from backend.models import CareTeam, CareTeamMember, Enrollment, Organization, Patient
from backend.models.careteam import TeamRole
from backend.services.careteams import members_by_team, patient_teams

blp = Blueprint("careteams", __name__, description="Care teams")


class MemberSchema(BaseSchema):
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String(validate=Choice("TeamRole", [r.value for r in TeamRole]))
    since = Instant(metadata={"description": "On the team since"})


class TeamSchema(BaseSchema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    organization = ma.fields.String()
    my_role = ma.fields.String(allow_none=True)
    enrolled_at = Instant(
        allow_none=True,
        metadata={"description": "On a patient's team list: since when it looks after them"},
    )
    members = ma.fields.List(ma.fields.Nested(MemberSchema))


class PanelPatientSchema(BaseSchema):
    id = ma.fields.Integer()
    display_name = ma.fields.String()
    birth_date = BirthDate(allow_none=True)
    time_zone = ma.fields.String()
    language = ma.fields.String()


def _team_views(
    rows: list[tuple[CareTeam, Organization, str | None, datetime | None]],
) -> list[dict[str, Any]]:
    """Each (team, organization, my role, enrolled since) with its members: one query for
    the members of all the teams."""
    members = members_by_team(db.session(), [team.id for team, *_ in rows])
    return [
        {
            "id": team.id,
            "name": team.name,
            "organization": org.name,
            "my_role": my_role,
            "enrolled_at": enrolled_at,
            "members": [
                {"user_id": u.id, "name": u.name, "role": m.role, "since": m.added_at}
                for m, u in members[team.id]
            ],
        }
        for team, org, my_role, enrolled_at in rows
    ]


@blp.route("/care-teams")
class MyTeams(MethodView):
    @blp.response(200, TeamSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """The care teams you are a member of"""
        rows = db.session.execute(
            select(CareTeam, Organization, CareTeamMember.role)
            .join(CareTeamMember, CareTeamMember.care_team_id == CareTeam.id)
            .join(Organization, Organization.id == CareTeam.organization_id)
            .where(CareTeamMember.user_id == current_user().id, CareTeamMember.active_clause())
            .order_by(CareTeam.id)
        )
        return _team_views([(t, o, role, None) for t, o, role in rows])


class _LoggedPanelPage(PaginatedSelect):
    """A page of a team's patients; each patient shown is in their access log."""

    @property
    def items(self) -> list[Any]:
        shown = super().items
        record_panel_access(current_user().id, [p.id for p in shown], "view_panel")
        return shown


@blp.route("/care-teams/<int:team_id>/patients")
class TeamPanel(MethodView):
    @blp.response(200, PanelPatientSchema(many=True))
    @blp.paginate(_LoggedPanelPage)
    @error_responses(blp, 404)
    def get(self, team_id: int) -> Select[Any]:
        """The patients enrolled on one of your teams"""
        if team_membership(current_user(), team_id) is None:
            fail(404, "No such care team.")
        return (
            select(Patient)
            .join(Enrollment, Enrollment.patient_id == Patient.id)
            .where(Enrollment.care_team_id == team_id, Enrollment.active_clause())
            .order_by(Patient.display_name, Patient.id)
        )


@blp.route("/patients/<int:patient_id>/care-team")
class PatientCareTeam(MethodView):
    @blp.response(200, TeamSchema(many=True))
    @error_responses(blp, 404)
    def get(self, patient_id: int) -> list[dict[str, Any]]:
        """The care teams looking after this patient, and who is on them"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_TEAM)
        teams = patient_teams(db.session(), patient_id)
        return _team_views([(t, o, None, since) for t, o, since in teams])
