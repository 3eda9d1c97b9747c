"""Schemas for patient records, shared by ``/me/patient`` and ``/patients``."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from backend.access import Action, PatientAccess
from backend.api.common import BaseSchema, BirthDate, Choice, ProfileFields, trimmed
from backend.models import Patient
from backend.models.caregiving import RELATIONSHIPS
from backend.models.profile import PROFILE_FIELDS

ROLES = ("self", "managing_caregiver", "caregiver", "care_team")


class PatientSchema(ProfileFields):
    id = ma.fields.Integer(dump_only=True)
    display_name = ma.fields.String(required=True, validate=trimmed(200))
    birth_date = BirthDate(allow_none=True)
    managed = ma.fields.Boolean(dump_only=True, metadata={"description": "Has no own login"})
    my_role = ma.fields.String(dump_only=True, validate=Choice("Role", ROLES))
    my_permissions = ma.fields.List(
        ma.fields.String(validate=Choice("Action", [a.value for a in Action])), dump_only=True
    )


class PatientUpdateSchema(PatientSchema):
    pass


class ManagedPatientCreateSchema(PatientSchema):
    relationship = ma.fields.String(
        required=True,
        load_only=True,
        validate=Choice("Relationship", RELATIONSHIPS),
        metadata={"description": "How you are related to the person you will manage"},
    )


class OwnPatientCreateSchema(BaseSchema):
    display_name = ma.fields.String(validate=trimmed(200))
    birth_date = BirthDate(allow_none=True)


def patient_view(patient: Patient, role: str, actions: Any) -> dict[str, Any]:
    view: dict[str, Any] = {name: getattr(patient, name) for name in PROFILE_FIELDS}
    view.update(
        id=patient.id,
        display_name=patient.display_name,
        birth_date=patient.birth_date,
        managed=patient.is_managed,
        my_role=role,
        my_permissions=sorted(str(a) for a in actions),
    )
    return view


def access_view(access: PatientAccess) -> dict[str, Any]:
    return patient_view(access.patient, access.role.value, access.actions)
