"""``/patients``: the people you care for, and managed patients you create."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from backend import db
from backend.access import (
    Action,
    access_for_grant,
    authorize,
    patients_cared_for,
    record_access,
)
from backend.api.blueprint import Blueprint
from backend.api.common import error_responses
from backend.api.patient_schemas import (
    ManagedPatientCreateSchema,
    PatientSchema,
    PatientUpdateSchema,
    access_view,
)
from backend.auth import current_user
from backend.models import CaregiverGrant, Patient
from backend.services.profiles import update_patient

blp = Blueprint("patients", __name__, url_prefix="/patients", description="Patients")


@blp.route("")
class Patients(MethodView):
    @blp.response(200, PatientSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list[dict[str, Any]]:
        """Patients you can see as yourself or as a caregiver (care teams: see /care-teams)"""
        cared_for = patients_cared_for(current_user())
        for access in cared_for:
            record_access(access, Action.VIEW_PATIENT)  # the patient's own record is not logged
        views = [access_view(a) for a in cared_for]
        pagination_parameters.item_count = len(views)
        first = pagination_parameters.first_item
        return views[first : first + pagination_parameters.page_size]

    @blp.arguments(ManagedPatientCreateSchema)
    @blp.response(201, PatientSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a managed patient (no own login); you become their managing caregiver"""
        user = current_user()
        relationship = data.pop("relationship")
        patient = Patient(created_by_user_id=user.id, **data)
        for name in ("language", "time_zone"):
            if name not in data:
                setattr(patient, name, getattr(user, name))
        db.session.add(patient)
        db.session.flush()
        grant = CaregiverGrant(
            patient_id=patient.id,
            caregiver_user_id=user.id,
            relationship=relationship,
            permissions=[],
            is_managing=True,
            granted_by_user_id=user.id,
        )
        db.session.add(grant)
        db.session.flush()
        return access_view(access_for_grant(user, patient, grant))


@blp.route("/<int:patient_id>")
class PatientById(MethodView):
    @blp.response(200, PatientSchema)
    @error_responses(blp, 404)
    def get(self, patient_id: int) -> dict[str, Any]:
        """One patient's record"""
        return access_view(authorize(current_user(), patient_id, Action.VIEW_PATIENT))

    @blp.arguments(PatientUpdateSchema(partial=True))
    @blp.response(200, PatientSchema)
    @error_responses(blp, 403, 404)
    def patch(self, changes: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Change a patient's record (the patient or their managing caregiver)"""
        access = authorize(current_user(), patient_id, Action.EDIT_PATIENT)
        update_patient(db.session(), access.patient, access.user, changes)
        return access_view(access)
