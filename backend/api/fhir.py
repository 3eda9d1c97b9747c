"""``/fhir``: a patient's record as a FHIR R4 Bundle (``Patient/{id}/$everything``) and single
resources by id, as ``application/fhir+json``, under the JSON API's access policy
(``backend/services/fhir_export.py``). Errors are our one error shape (JSON), not
OperationOutcome: a client of this API already reads it."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView

from backend import db
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Enum, error_responses
from backend.auth import current_user
from backend.fhir import bundles
from backend.services import fhir_export, fhir_import
from backend.services.fhir_import import ImportStatus

blp = Blueprint("fhir", __name__, description="FHIR R4 export and import")
FHIR_JSON = "application/fhir+json"
# A year of a patient's record from an EHR is a few thousand entries; beyond this, split it.
MAX_ENTRIES = 20_000


class FhirResourceSchema(ma.Schema):
    """Any FHIR R4 resource (documentation: the view returns the resource as built)."""

    class Meta:
        unknown = ma.INCLUDE

    resourceType = ma.fields.String(required=True, metadata={"example": "MedicationRequest"})
    id = ma.fields.String(required=True, metadata={"example": "12"})


class FhirBundleSchema(ma.Schema):
    """A FHIR R4 searchset Bundle (http://hl7.org/fhir/R4/bundle.html)."""

    class Meta:
        unknown = ma.INCLUDE

    resourceType = ma.fields.Constant("Bundle", required=True)
    type = ma.fields.Constant("searchset", required=True)
    timestamp = ma.fields.String(required=True, metadata={"format": "date-time"})
    total = ma.fields.Integer(required=True)
    link = ma.fields.List(ma.fields.Dict(), required=True)
    entry = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        metadata={"description": "fullUrl, resource and search.mode of each resource"},
    )


def _base_url() -> str:
    return f"{request.host_url}fhir/"


def _fhir(resource: dict[str, Any]) -> Response:
    return Response(json.dumps(resource, ensure_ascii=False), mimetype=FHIR_JSON)


@blp.route("/fhir/Patient/<int:patient_id>/$everything")
class PatientEverything(MethodView):
    @blp.response(
        200,
        FhirBundleSchema,
        content_type=FHIR_JSON,
        description="The patient's record as far as you may see it, as a FHIR R4 Bundle",
    )
    @error_responses(blp, 404)
    def get(self, patient_id: int) -> Any:
        """A patient's record as a FHIR R4 Bundle (what you may see of it)"""
        bundle = fhir_export.everything(db.session(), current_user(), patient_id, _base_url())
        return _fhir(bundle)


@blp.route("/fhir/<string:resource_type>/<int:resource_id>")
class FhirResource(MethodView):
    @blp.response(
        200,
        FhirResourceSchema,
        content_type=FHIR_JSON,
        description="One FHIR R4 resource: "
        + ", ".join(fhir_export.RESOURCE_TYPES)
        + " (any other type is a 404)",
    )
    @error_responses(blp, 403, 404)
    def get(self, resource_type: str, resource_id: int) -> Any:
        """One FHIR R4 resource of a patient's record by type and id"""
        found = fhir_export.one(db.session(), current_user(), resource_type, resource_id)
        return _fhir(found)


class BundleInSchema(BaseSchema):
    """A FHIR R4 Bundle of type transaction, batch or collection. Its entries are read and
    validated resource by resource (fhir.resources, R4B models); what cannot be brought in
    is refused in the report, not here."""

    resourceType = Enum("BundleResourceType", ["Bundle"], required=True)
    type = Enum("ImportBundleType", bundles.BUNDLE_TYPES, required=True)
    id = ma.fields.String(validate=ma.validate.Length(max=64))
    meta = ma.fields.Dict()
    implicitRules = ma.fields.String()
    language = ma.fields.String()
    identifier = ma.fields.Dict()
    timestamp = ma.fields.String()
    total = ma.fields.Integer()
    link = ma.fields.List(ma.fields.Dict())
    signature = ma.fields.Dict()
    entry = ma.fields.List(
        ma.fields.Dict(), required=True, validate=ma.validate.Length(max=MAX_ENTRIES)
    )


class OutcomeSchema(ma.Schema):
    resource = ma.fields.String(required=True, metadata={"example": "MedicationRequest/abc"})
    status = Enum("ImportStatus", [s.value for s in ImportStatus], required=True)
    record = ma.fields.String(required=True, allow_none=True, metadata={"example": "medication 12"})
    field = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"example": "dosageInstruction[0].timing.repeat.periodUnit"},
    )
    reason = ma.fields.String(required=True, allow_none=True)


class ImportReportSchema(ma.Schema):
    patient_id = ma.fields.Integer(required=True, allow_none=True)
    patient = Enum(
        "ImportPatientStatus",
        ["created", "matched", "refused"],
        required=True,
        metadata={"description": "Created as a new managed patient, or matched"},
    )
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    outcomes = ma.fields.List(ma.fields.Nested(OutcomeSchema), required=True)
    ignored = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "Resources of kinds we do not bring in, by type"},
    )


@blp.route("/patients/<int:patient_id>/fhir-import")
class PatientFhirImport(MethodView):
    @blp.arguments(BundleInSchema)
    @blp.response(200, ImportReportSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Bring a FHIR R4 Bundle into the patient's record (what you may manage of it)"""
        return fhir_import.import_into(db.session(), data, current_user(), patient_id)
