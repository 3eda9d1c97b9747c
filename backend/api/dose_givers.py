"""``/patients/{id}/dose-givers``: who receives the on-time dose reminder and its follow-up
(the patient, chosen caregivers who give the doses, or both), per patient and per medicine."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from backend import db
from backend.access import Action, authorize
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Enum, RecordId, error_responses
from backend.auth import current_user
from backend.models.dose_givers import GIVER_MODES
from backend.services.dose_givers import MAX_GIVERS, dose_givers_view, set_dose_givers

blp = Blueprint("dose_givers", __name__, description="Who gives the doses")


class DoseGiversUpdateSchema(BaseSchema):
    medication_id = RecordId(
        allow_none=True, metadata={"description": "One medicine's override; none: the patient's"}
    )
    receives = Enum(
        "DoseGiversMode",
        GIVER_MODES,
        required=True,
        allow_none=True,
        metadata={
            "description": "Who receives the on-time reminder and its follow-up; null goes "
            "back to the default (the patient's own login; a managed patient's managing "
            "caregivers; for a medicine: the patient's setting)"
        },
    )
    caregiver_user_ids = ma.fields.List(
        RecordId(),
        load_default=list,
        validate=ma.validate.Length(max=MAX_GIVERS),
        metadata={
            "description": "The caregivers who give the doses ('caregivers' or 'both'); "
            "each must hold log_doses on an active grant"
        },
    )


class GiverSchema(BaseSchema):
    user_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    is_patient = ma.fields.Boolean(required=True)


class GiverOverrideSchema(BaseSchema):
    medication_id = ma.fields.Integer(required=True)
    receives = Enum("DoseGiversMode", GIVER_MODES, required=True)
    caregiver_user_ids = ma.fields.List(ma.fields.Integer(), required=True)
    reaches = ma.fields.List(
        ma.fields.Nested(GiverSchema),
        required=True,
        metadata={"description": "Who gets this medicine's reminders now"},
    )


class DoseGiversSchema(BaseSchema):
    receives = Enum("DoseGiversMode", GIVER_MODES, required=True)
    caregiver_user_ids = ma.fields.List(ma.fields.Integer(), required=True)
    is_default = ma.fields.Boolean(required=True)
    reaches = ma.fields.List(
        ma.fields.Nested(GiverSchema),
        required=True,
        metadata={
            "description": "Who gets the reminders now: the chosen caregivers who still hold "
            "log_doses (none left: the default)"
        },
    )
    overrides = ma.fields.List(ma.fields.Nested(GiverOverrideSchema), required=True)


@blp.route("/patients/<int:patient_id>/dose-givers")
class DoseGivers(MethodView):
    @blp.response(200, DoseGiversSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> dict[str, Any]:
        """Who receives the on-time dose reminder and its follow-up"""
        access = authorize(current_user(), patient_id, Action.VIEW_PATIENT)
        return dose_givers_view(db.session(), access.patient)

    @blp.arguments(DoseGiversUpdateSchema)
    @blp.response(200, DoseGiversSchema)
    @error_responses(blp, 403, 404, 409)
    def put(self, data: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Choose who gives the doses (the patient or a managing caregiver), or per medicine"""
        access = authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        set_dose_givers(
            db.session(),
            access.patient,
            access.user,
            data.get("medication_id"),
            data["receives"],
            data["caregiver_user_ids"],
        )
        return dose_givers_view(db.session(), access.patient)
