"""``/patients/{id}/caregivers``: who has access by consent; change, revoke, leave."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import Select, select

from backend import db
from backend.access import Action, authorize, may_end_grant
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Choice, Instant, PaginatedSelect, error_responses
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import ALL_PERMISSIONS, CaregiverGrant, User
from backend.services.caregivers import change_grant, end_grant

blp = Blueprint("caregivers", __name__, description="Caregiver access")

GRANT_STATUSES = ("active", "lapsed", "revoked", "left")


class GrantSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    caregiver_user_id = ma.fields.Integer(dump_only=True)
    caregiver_name = ma.fields.Method(
        "_name", dump_only=True, allow_none=True, metadata={"type": "string"}
    )
    relationship = ma.fields.String(dump_only=True)
    is_managing = ma.fields.Boolean(dump_only=True)
    permissions = ma.fields.List(
        ma.fields.String(validate=Choice("Permission", ALL_PERMISSIONS)),
        validate=ma.validate.Length(max=len(ALL_PERMISSIONS)),
        load_only=True,
    )
    # Sent: what the caregiver may do. A managing caregiver's list holds the patient's own
    # actions too (edit_care_plan, manage_checkins...), hence a wider enum than the input's.
    granted = ma.fields.List(
        ma.fields.String(validate=Choice("Action", [a.value for a in Action])),
        attribute="permissions",
        data_key="permissions",
        dump_only=True,
        metadata={"description": "What the caregiver may do (a managing caregiver: all of it)"},
    )
    ends_at = Instant(
        allow_none=True, metadata={"description": "Access lapses by itself at this instant"}
    )
    created_at = Instant(dump_only=True)
    ended_at = Instant(dump_only=True, allow_none=True)
    status = ma.fields.Method(
        "_status", dump_only=True, validate=Choice("GrantStatus", GRANT_STATUSES)
    )

    def _status(self, grant: CaregiverGrant) -> str:
        return grant.status()

    def _name(self, grant: CaregiverGrant) -> str | None:
        user = db.session.get(User, grant.caregiver_user_id)
        return user.name if user else None

    @ma.validates("ends_at")
    def _future(self, value: Any, **_: Any) -> None:
        if value is not None and value <= now():
            raise ma.ValidationError("Must be in the future.")


class GrantFilter(BaseSchema):
    status = ma.fields.String(validate=Choice("GrantStatus", GRANT_STATUSES))


@blp.route("/patients/<int:patient_id>/caregivers")
class Caregivers(MethodView):
    @blp.arguments(GrantFilter, location="query")
    @blp.response(200, GrantSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int) -> Select[Any]:
        """Everyone who has or had caregiver access, with its status"""
        authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        stmt = select(CaregiverGrant).where(CaregiverGrant.patient_id == patient_id)
        wanted = filters.get("status")
        at = now()
        if wanted == "active":
            stmt = stmt.where(CaregiverGrant.active_clause(at))
        elif wanted == "lapsed":
            stmt = stmt.where(CaregiverGrant.ended_at.is_(None), CaregiverGrant.ends_at <= at)
        elif wanted is not None:
            stmt = stmt.where(CaregiverGrant.end_reason == wanted)
        return stmt.order_by(CaregiverGrant.id)


def _grant(patient_id: int, grant_id: int) -> CaregiverGrant:
    grant = db.session.get(CaregiverGrant, grant_id)
    if grant is None or grant.patient_id != patient_id:
        fail(404, "No such caregiver access.")
    return grant


@blp.route("/patients/<int:patient_id>/caregivers/<int:grant_id>")
class CaregiverById(MethodView):
    @blp.arguments(GrantSchema(partial=True))
    @blp.response(200, GrantSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, changes: dict[str, Any], patient_id: int, grant_id: int) -> CaregiverGrant:
        """Change a caregiver's permissions or end date"""
        authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        grant = _grant(patient_id, grant_id)
        change_grant(db.session(), grant, changes)
        return grant

    @blp.response(204)
    @error_responses(blp, 404, 409)
    def delete(self, patient_id: int, grant_id: int) -> None:
        """Revoke a caregiver's access (the patient's side), or leave (the caregiver)"""
        access = authorize(current_user(), patient_id, Action.VIEW_PATIENT)
        grant = _grant(patient_id, grant_id)
        if not may_end_grant(access, grant):
            # Someone else's access, to a caregiver who may not manage access: the same 404
            # as a grant that does not exist (which grant ids exist is not theirs to learn).
            fail(404, "No such caregiver access.")
        end_grant(db.session(), grant, access.user)
