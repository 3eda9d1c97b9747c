"""``/me``: the signed-in person's profile, routine and communication needs."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import resolve
from backend.api.blueprint import Blueprint
from backend.api.common import LocalTime, ProfileFields, error_responses, trimmed
from backend.api.patient_schemas import OwnPatientCreateSchema, PatientSchema, access_view
from backend.auth import current_auth_time, current_user
from backend.errors import fail
from backend.models import Patient, User
from backend.services.profiles import update_me
from backend.services.sign_ins import sign_out

blp = Blueprint("me", __name__, url_prefix="/me", description="The signed-in user")


class MeSchema(ProfileFields):
    id = ma.fields.Integer(dump_only=True)
    email = ma.fields.String(dump_only=True, allow_none=True)
    display_name = ma.fields.String(dump_only=True, allow_none=True)
    preferred_name = ma.fields.String(allow_none=True, validate=trimmed(100))
    quiet_hours_start = LocalTime(allow_none=True)
    quiet_hours_end = LocalTime(allow_none=True)
    show_details_on_lock_screen = ma.fields.Boolean()
    morning_summary = ma.fields.Boolean(
        metadata={"description": "Opt in to a daily 'you have N things today' push."}
    )
    morning_summary_time = LocalTime(
        allow_none=True,
        metadata={"description": "Local time of the morning summary; null: your wake time."},
    )
    patient_id = ma.fields.Method(
        "_patient_id", dump_only=True, allow_none=True, metadata={"type": "integer"}
    )

    def _patient_id(self, user: User) -> int | None:
        return db.session.scalar(select(Patient.id).where(Patient.user_id == user.id))

    @ma.validates_schema
    def _quiet_hours_pair(self, data: dict[str, Any], **_: Any) -> None:
        start, end = "quiet_hours_start", "quiet_hours_end"
        if (start in data) != (end in data) or (
            start in data and (data[start] is None) != (data[end] is None)
        ):
            raise ma.ValidationError("Set both quiet-hour bounds, or clear both.", start)


@blp.route("")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self) -> User:
        """Your profile"""
        return current_user()

    @blp.arguments(
        MeSchema(partial=True),
        example={"preferred_name": "María", "language": "es", "wake_time": "06:45"},
    )
    @blp.response(200, MeSchema)
    def patch(self, changes: dict[str, Any]) -> User:
        """Change your profile; zone, routine and language also apply to your own patient record"""
        user = current_user()
        update_me(db.session(), user, changes)
        return user


@blp.route("/sign-out")
class SignOut(MethodView):
    @blp.response(204)
    @error_responses(blp, 400)
    def post(self) -> None:
        """End this sign-in: its ID tokens, refreshed or not, get a 401 from now on"""
        auth_time = current_auth_time()
        if auth_time is None:
            fail(400, "This token has no auth_time, so its sign-in cannot be told apart.")
        sign_out(db.session(), current_user(), auth_time)


@blp.route("/patient")
class MyPatient(MethodView):
    @blp.response(200, PatientSchema)
    @error_responses(blp, 404)
    def get(self) -> dict[str, Any]:
        """Your own patient record"""
        own = db.session.scalar(select(Patient).where(Patient.user_id == current_user().id))
        if own is None:
            fail(404, "You have no patient record yet; create it with POST.")
        return _own_view(own)

    @blp.arguments(OwnPatientCreateSchema)
    @blp.response(201, PatientSchema)
    @error_responses(blp, 409)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create your own patient record (your profile's zone, routine and language carry over)"""
        user = current_user()
        if db.session.scalar(select(Patient.id).where(Patient.user_id == user.id)):
            fail(409, "You already have a patient record.")
        patient = Patient(
            user_id=user.id,
            created_by_user_id=user.id,
            display_name=data.get("display_name") or user.name,
            birth_date=data.get("birth_date"),
        )
        patient.copy_profile_from(user)
        db.session.add(patient)
        db.session.flush()
        return _own_view(patient)


def _own_view(patient: Patient) -> dict[str, Any]:
    """Your record with what the one policy lets you do on it (the same list `/patients` and
    every route give: a patient does not schedule their own check-ins)."""
    access = resolve(current_user(), patient.id)
    assert access is not None  # your own record
    return access_view(access)
