"""Caregiver invitations (and self-link codes for managed patients), and redeeming them."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from sqlalchemy import Select, select

from backend import db
from backend.access import Action, authorize
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    Choice,
    Instant,
    PaginatedSelect,
    error_responses,
    trimmed,
)
from backend.api.errors import ErrorSchema
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import ALL_PERMISSIONS, Invitation
from backend.models.caregiving import RELATIONSHIPS
from backend.services.invitations import create_invitation, redeem

blp = Blueprint("invitations", __name__, description="Caregiver invitations")

INVITATION_STATUSES = ("pending", "redeemed", "expired", "cancelled")


class InvitationSchema(BaseSchema):
    """An invitation as shown. A self-link code has relationship "self" and no permissions."""

    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    kind = ma.fields.String(
        dump_only=True, validate=Choice("InvitationKind", ("caregiver", "self_link"))
    )
    relationship = ma.fields.String(
        dump_only=True, validate=Choice("InvitationRelationship", (*RELATIONSHIPS, "self"))
    )
    permissions = ma.fields.List(
        ma.fields.String(validate=Choice("Permission", ALL_PERMISSIONS)), dump_only=True
    )
    invitee_name = ma.fields.String(dump_only=True, allow_none=True)
    grant_ends_at = Instant(dump_only=True, allow_none=True)
    created_at = Instant(dump_only=True)
    expires_at = Instant(dump_only=True)
    status = ma.fields.Method(
        "_status", dump_only=True, validate=Choice("InvitationStatus", INVITATION_STATUSES)
    )

    def _status(self, invitation: Invitation) -> str:
        return invitation.status()


class InvitationCreateSchema(BaseSchema):
    relationship = ma.fields.String(required=True, validate=Choice("Relationship", RELATIONSHIPS))
    permissions = ma.fields.List(
        ma.fields.String(validate=Choice("Permission", ALL_PERMISSIONS)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(ALL_PERMISSIONS)),
    )
    invitee_name = ma.fields.String(allow_none=True, validate=trimmed(200))
    expires_in_hours = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=24 * 30),
        metadata={"description": "How long the code stays valid (default 72 h)"},
    )
    grant_ends_at = Instant(
        allow_none=True,
        metadata={"description": "Access granted by this invitation lapses at this instant"},
    )

    @ma.validates("grant_ends_at")
    def _future(self, value: Any, **_: Any) -> None:
        if value is not None and value <= now():
            raise ma.ValidationError("Must be in the future.")


class CreatedInvitationSchema(InvitationSchema):
    code = ma.fields.String(
        dump_only=True, metadata={"description": "Shown once; give it to the invitee"}
    )


class RedeemSchema(BaseSchema):
    code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))


class RedeemedSchema(BaseSchema):
    patient_id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    grant_id = ma.fields.Integer(allow_none=True)
    relationship = ma.fields.String(allow_none=True)
    permissions = ma.fields.List(ma.fields.String())
    ends_at = Instant(allow_none=True)


class StatusFilter(BaseSchema):
    status = ma.fields.String(validate=Choice("InvitationStatus", INVITATION_STATUSES))


def _with_code(invitation: Invitation, code: str) -> Invitation:
    # The plain code exists only in this response; the row keeps its hash.
    invitation.code = code  # type: ignore[attr-defined]
    return invitation


@blp.route("/patients/<int:patient_id>/invitations")
class Invitations(MethodView):
    @blp.arguments(StatusFilter, location="query")
    @blp.response(200, InvitationSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int) -> Select[Any]:
        """Invitations made for this patient, newest first"""
        authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        stmt = select(Invitation).where(Invitation.patient_id == patient_id)
        wanted = filters.get("status")
        if wanted is not None:
            at = now()
            stmt = stmt.where(
                {
                    "redeemed": Invitation.redeemed_at.is_not(None),
                    "cancelled": Invitation.cancelled_at.is_not(None)
                    & Invitation.redeemed_at.is_(None),
                    "expired": Invitation.redeemed_at.is_(None)
                    & Invitation.cancelled_at.is_(None)
                    & (Invitation.expires_at <= at),
                    "pending": Invitation.redeemed_at.is_(None)
                    & Invitation.cancelled_at.is_(None)
                    & (Invitation.expires_at > at),
                }[wanted]
            )
        return stmt.order_by(Invitation.id.desc())

    @blp.arguments(
        InvitationCreateSchema,
        example={
            "relationship": "daughter",
            "permissions": ["view_medications", "log_doses", "receive_missed_dose_alerts"],
            "invitee_name": "Ana",
        },
    )
    @blp.response(201, CreatedInvitationSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Invitation:
        """Invite a caregiver with a relationship and a set of permissions"""
        access = authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        invitation, code = create_invitation(
            db.session(), access.patient, access.user, current_app.config["SETTINGS"], **data
        )
        return _with_code(invitation, code)


@blp.route("/patients/<int:patient_id>/invitations/<int:invitation_id>")
class InvitationById(MethodView):
    @blp.response(204)
    @error_responses(blp, 403, 404, 409)
    def delete(self, patient_id: int, invitation_id: int) -> None:
        """Cancel a pending invitation"""
        authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        invitation = db.session.get(Invitation, invitation_id)
        if invitation is None or invitation.patient_id != patient_id:
            fail(404, "No such invitation.")
        if invitation.status() != "pending":
            fail(409, f"This invitation is already {invitation.status()}.")
        invitation.cancelled_at = now()


class LinkCodeSchema(BaseSchema):
    expires_in_hours = ma.fields.Integer(validate=ma.validate.Range(min=1, max=24 * 30))


@blp.route("/patients/<int:patient_id>/link-code")
class LinkCode(MethodView):
    @blp.arguments(LinkCodeSchema)
    @blp.response(201, CreatedInvitationSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int) -> Invitation:
        """A code with which a managed patient links their own new login to this record"""
        access = authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        if not access.patient.is_managed:
            fail(409, "This patient already has their own login.")
        invitation, code = create_invitation(
            db.session(),
            access.patient,
            access.user,
            current_app.config["SETTINGS"],
            kind="self_link",
            relationship="self",
            expires_in_hours=data.get("expires_in_hours"),
        )
        return _with_code(invitation, code)


@blp.route("/invitations/redeem")
class Redeem(MethodView):
    @blp.arguments(RedeemSchema, example={"code": "K7QF-29XM-4TRD"})
    @blp.response(201, RedeemedSchema)
    @blp.alt_response(
        429,
        schema=ErrorSchema,
        description="Too many invalid codes",
        headers={"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    )
    @error_responses(blp, 404, 409, 410)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Accept an invitation code: become a caregiver, or link your login to your record"""
        result = redeem(db.session(), data["code"], current_user(), current_app.config["SETTINGS"])
        grant = result.grant
        return {
            "patient_id": result.invitation.patient_id,
            "kind": result.invitation.kind,
            "grant_id": grant.id if grant else None,
            "relationship": grant.relationship if grant else None,
            "permissions": grant.permissions if grant else [],
            "ends_at": grant.ends_at if grant else None,
        }
