"""``/patients/{id}/medications``: medicines, their FHIR Timing schedules, supply and PRN."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import Action, authorize
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    Choice,
    Day,
    Enum,
    Instant,
    PaginatedSelect,
    error_responses,
    trimmed,
)
from backend.api.timing import FhirTiming
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import Medication, Patient
from backend.models.dose_givers import GIVER_MODES
from backend.models.medication import MEDICATION_STATUSES, TZ_POLICIES
from backend.schedule.medicines import (
    DEFAULT_REFILL_THRESHOLD_DAYS,
    occurrences,
    prn_status,
    supply,
)
from backend.services.dose_givers import given_by
from backend.services.doses import live_logs
from backend.services.medications import add_medication, update_medication

blp = Blueprint("medications", __name__, description="Medications and schedules")

MAX_SCHEDULE_WINDOW = timedelta(days=31)


class SupplySchema(ma.Schema):
    days_left = ma.fields.Float(allow_none=True)
    needs_refill = ma.fields.Boolean()


class PrnSchema(ma.Schema):
    taken_last_24h = ma.fields.Integer()
    max_per_24h = ma.fields.Integer(allow_none=True)
    last_taken_at = Instant(allow_none=True)
    next_allowed_at = Instant(
        allow_none=True,
        metadata={"description": "When the next dose is allowed; null: one may be taken now"},
    )
    available_now = ma.fields.Boolean()


class GivenBySchema(ma.Schema):
    receives = Enum("DoseGiversMode", GIVER_MODES, required=True)
    is_override = ma.fields.Boolean(
        required=True, metadata={"description": "This medicine's own setting"}
    )
    user_ids = ma.fields.List(
        ma.fields.Integer(),
        required=True,
        metadata={"description": "Who gets its on-time reminder and follow-up now"},
    )


class MedicationSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=trimmed(200))
    strength = ma.fields.String(allow_none=True, validate=trimmed(100))
    form = ma.fields.String(allow_none=True, validate=trimmed(60))
    route = ma.fields.String(allow_none=True, validate=trimmed(60))
    instructions = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    prescriber = ma.fields.String(allow_none=True, validate=trimmed(200))
    reason = ma.fields.String(allow_none=True, validate=trimmed(300))
    start_date = Day(metadata={"description": "Default: today in the patient's zone"})
    end_date = Day(allow_none=True)
    status = ma.fields.String(validate=Choice("MedicationStatus", MEDICATION_STATUSES))
    time_critical = ma.fields.Boolean()
    timing = FhirTiming(
        allow_none=True,
        metadata={"description": "HL7 FHIR R4 Timing JSON, returned as given"},
    )
    as_needed = ma.fields.Boolean()
    prn_max_per_24h = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 48))
    prn_min_interval_minutes = ma.fields.Integer(
        allow_none=True, validate=ma.validate.Range(1, 24 * 60)
    )
    tz_policy = ma.fields.String(
        validate=Choice("TimeZonePolicy", TZ_POLICIES),
        metadata={"description": "local: follow the wall clock; home: keep home-zone instants"},
    )
    home_time_zone = ma.fields.String(dump_only=True)
    quantity_on_hand = ma.fields.Float(allow_none=True, validate=ma.validate.Range(0, 100000))
    dose_amount = ma.fields.Float(validate=ma.validate.Range(0.01, 1000))
    refill_threshold_days = ma.fields.Integer(
        allow_none=True,
        validate=ma.validate.Range(0, 365),
        metadata={
            "description": "Days of supply left at which a refill is due; null: "
            f"{DEFAULT_REFILL_THRESHOLD_DAYS} when the supply is tracked (quantity_on_hand)"
        },
    )
    supply = ma.fields.Nested(SupplySchema, dump_only=True)
    prn = ma.fields.Nested(PrnSchema, dump_only=True, allow_none=True)
    given_by = ma.fields.Nested(
        GivenBySchema,
        dump_only=True,
        metadata={
            "description": "Who gives the doses: set with PUT /patients/{id}/dose-givers "
            "(medication_id for this medicine alone)"
        },
    )

    @ma.validates_schema
    def _consistent(self, data: dict[str, Any], partial: Any = None, **_: Any) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ma.ValidationError("Ends before it starts.", "end_date")
        if not partial and not data.get("timing") and not data.get("as_needed"):
            raise ma.ValidationError(
                "A schedule is needed unless the medicine is as-needed.", "timing"
            )


class OccurrenceSchema(ma.Schema):
    slot_key = ma.fields.String()
    local_date = Day()
    local_time = ma.fields.Time(format="%H:%M")
    at = Instant()
    zone = ma.fields.String()


class WindowArgs(BaseSchema):
    from_ = Instant(data_key="from", metadata={"description": "Default: now"})
    to = Instant(metadata={"description": "Default: 7 days after from; at most 31 days"})


class StatusFilter(BaseSchema):
    status = ma.fields.String(validate=Choice("MedicationStatus", MEDICATION_STATUSES))


def medication_view(
    med: Medication, patient: Patient, givers: dict[int, Any] | None = None
) -> Medication:
    """Attach the computed parts (supply, PRN, who gives it) the schema dumps."""
    if givers is None:
        givers = given_by(db.session(), patient, [med.id])
    med.given_by = givers[med.id]  # type: ignore[attr-defined]
    med.supply = supply(med, patient)  # type: ignore[attr-defined]
    med.prn = None  # type: ignore[attr-defined]
    if med.as_needed:
        at = now()
        recent = live_logs(db.session(), [med.id], at - timedelta(hours=24), at + timedelta(1))
        med.prn = prn_status(med, recent, at)  # type: ignore[attr-defined]
    return med


def get_medication(patient_id: int, medication_id: int) -> Medication:
    med = db.session.get(Medication, medication_id)
    if med is None or med.patient_id != patient_id:
        fail(404, "No such medication.")
    return med


@blp.route("/patients/<int:patient_id>/medications")
class Medications(MethodView):
    @blp.arguments(StatusFilter, location="query")
    @blp.response(200, MedicationSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int, pagination_parameters: Any) -> Any:
        """The patient's medicines"""
        access = authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        stmt = select(Medication).where(Medication.patient_id == patient_id)
        if "status" in filters:
            stmt = stmt.where(Medication.status == filters["status"])
        page = PaginatedSelect(stmt.order_by(Medication.name, Medication.id), pagination_parameters)
        meds = page.items
        givers = given_by(db.session(), access.patient, [m.id for m in meds])
        return [medication_view(m, access.patient, givers) for m in meds]

    @blp.arguments(
        MedicationSchema,
        example={
            "name": "Metformin",
            "strength": "500 mg",
            "form": "tablet",
            "instructions": "With breakfast and dinner",
            "timing": {
                "repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["CM", "CV"]}
            },
            "quantity_on_hand": 60,
        },
    )
    @blp.response(201, MedicationSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Medication:
        """Add a medicine with its schedule"""
        access = authorize(current_user(), patient_id, Action.MANAGE_MEDICATIONS)
        med = add_medication(db.session(), access.patient, access.user, data)
        return medication_view(med, access.patient)


@blp.route("/patients/<int:patient_id>/medications/<int:medication_id>")
class MedicationById(MethodView):
    @blp.response(200, MedicationSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, medication_id: int) -> Medication:
        """One medicine, with supply left and PRN availability"""
        access = authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        return medication_view(get_medication(patient_id, medication_id), access.patient)

    @blp.arguments(MedicationSchema(partial=True))
    @blp.response(200, MedicationSchema)
    @error_responses(blp, 403, 404)
    def patch(self, changes: dict[str, Any], patient_id: int, medication_id: int) -> Medication:
        """Change a medicine: dose, schedule, status (pause/stop), supply"""
        access = authorize(current_user(), patient_id, Action.MANAGE_MEDICATIONS)
        med = get_medication(patient_id, medication_id)
        update_medication(db.session(), med, changes)
        return medication_view(med, access.patient)


@blp.route("/patients/<int:patient_id>/medications/<int:medication_id>/schedule")
class MedicationSchedule(MethodView):
    @blp.arguments(WindowArgs, location="query")
    @blp.response(200, OccurrenceSchema(many=True))
    @error_responses(blp, 403, 404)
    def get(self, window: dict[str, Any], patient_id: int, medication_id: int) -> Any:
        """Scheduled doses in a window, in the patient's current zone"""
        access = authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        med = get_medication(patient_id, medication_id)
        start: datetime = window.get("from_") or now()
        end: datetime = window.get("to") or start + timedelta(days=7)
        if not start < end <= start + MAX_SCHEDULE_WINDOW:
            fail(
                422,
                "The window must be positive and at most 31 days.",
                errors={"query": {"to": ["At most 31 days after from."]}},
            )
        return occurrences(med, access.patient, start, end)
