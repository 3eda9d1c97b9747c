"""``/patients/{id}/doses``: log a dose taken or skipped, undo a mis-tap, correct later."""

from __future__ import annotations

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
    Instant,
    PaginatedSelect,
    Pattern,
    RecordId,
    error_responses,
    trimmed,
)
from backend.api.medications import get_medication
from backend.auth import current_user
from backend.errors import fail
from backend.models import DoseLog
from backend.services.doses import Report, correct, log_dose, undo

blp = Blueprint("doses", __name__, description="Dose log")

REPORTED = ("taken", "taken_late", "skipped")


class DoseStateSchema(ma.Schema):
    status = ma.fields.String(validate=Choice("DoseReport", REPORTED))
    taken_at = ma.fields.String(metadata={"format": "date-time"})
    skip_reason = ma.fields.String(allow_none=True)
    late = ma.fields.Boolean()


class DoseCorrectionSchema(ma.Schema):
    """One correction of a logged dose: who, when, and the log before and after."""

    at = ma.fields.String(metadata={"format": "date-time"})
    by_user_id = ma.fields.Integer()
    from_ = ma.fields.Nested(DoseStateSchema, data_key="from", attribute="from")
    to = ma.fields.Nested(DoseStateSchema)


class DoseSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    medication_id = RecordId(required=True)
    client_id = ma.fields.String(
        required=True,
        validate=Pattern(r"^[A-Za-z0-9._:-]{8,100}$"),
        metadata={"description": "The phone's own id for this log; resending it is harmless"},
    )
    status = ma.fields.String(required=True, validate=Choice("DoseReport", REPORTED))
    taken_at = Instant(required=True, metadata={"description": "When it was taken or skipped"})
    slot_key = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=80),
        metadata={"description": "The scheduled dose it answers (from the today view)"},
    )
    skip_reason = ma.fields.String(allow_none=True, validate=trimmed(300))
    late = ma.fields.Boolean(dump_only=True)
    scheduled_at = Instant(dump_only=True, allow_none=True)
    over_limit = ma.fields.Boolean(dump_only=True)
    extra = ma.fields.Method(
        "_extra",
        dump_only=True,
        metadata={"type": "boolean", "description": "Logged outside the schedule (no slot)"},
    )
    logged_by_user_id = ma.fields.Integer(dump_only=True)
    on_behalf = ma.fields.Boolean(dump_only=True)
    logged_at = Instant(dump_only=True)
    undone_at = Instant(dump_only=True, allow_none=True)
    corrections = ma.fields.List(ma.fields.Nested(DoseCorrectionSchema), dump_only=True)

    def _extra(self, log: DoseLog) -> bool:
        return log.slot_key is None

    @ma.validates_schema
    def _reason_only_when_skipped(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("skip_reason") and data.get("status") not in (None, "skipped"):
            raise ma.ValidationError("Only a skipped dose has a skip reason.", "skip_reason")


class CorrectionSchema(BaseSchema):
    status = ma.fields.String(validate=Choice("DoseReport", REPORTED))
    taken_at = Instant()
    skip_reason = ma.fields.String(allow_none=True, validate=trimmed(300))


class DoseFilter(BaseSchema):
    medication_id = RecordId()
    from_ = Instant(data_key="from")
    to = Instant()


def _dose(patient_id: int, dose_id: int) -> DoseLog:
    log = db.session.get(DoseLog, dose_id)
    if log is None or log.patient_id != patient_id:
        fail(404, "No such dose log.")
    return log


@blp.route("/patients/<int:patient_id>/doses")
class Doses(MethodView):
    @blp.arguments(DoseFilter, location="query")
    @blp.response(200, DoseSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int) -> Any:
        """The dose log, newest first"""
        authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        stmt = select(DoseLog).where(DoseLog.patient_id == patient_id)
        if "medication_id" in filters:
            stmt = stmt.where(DoseLog.medication_id == filters["medication_id"])
        if "from_" in filters:
            stmt = stmt.where(DoseLog.taken_at >= filters["from_"])
        if "to" in filters:
            stmt = stmt.where(DoseLog.taken_at < filters["to"])
        return stmt.order_by(DoseLog.taken_at.desc(), DoseLog.id.desc())

    @blp.arguments(
        DoseSchema,
        example={
            "client_id": "3f6c1a9e-phone-dose-0001",
            "medication_id": 12,
            "slot_key": "2026-11-25T08:00",
            "status": "taken",
            "taken_at": "2026-11-25T08:05:00-05:00",
        },
    )
    @blp.response(201, DoseSchema)
    @blp.alt_response(200, schema=DoseSchema, description="The same client_id was sent before")
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Log a dose as taken, taken late or skipped (yourself or on the patient's behalf)"""
        access = authorize(current_user(), patient_id, Action.LOG_DOSES)
        med = get_medication(patient_id, data.pop("medication_id"))
        log, created = log_dose(db.session(), med, access.patient, access.user, Report(**data))
        return log if created else (log, 200)


@blp.route("/patients/<int:patient_id>/doses/<int:dose_id>")
class DoseById(MethodView):
    @blp.arguments(CorrectionSchema)
    @blp.response(200, DoseSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, changes: dict[str, Any], patient_id: int, dose_id: int) -> DoseLog:
        """Correct a log (kept with its before and after)"""
        access = authorize(current_user(), patient_id, Action.LOG_DOSES)
        log = _dose(patient_id, dose_id)
        med = get_medication(patient_id, log.medication_id)
        return correct(db.session(), med, log, access.user, changes)

    @blp.response(204)
    @error_responses(blp, 403, 404, 409)
    def delete(self, patient_id: int, dose_id: int) -> None:
        """Undo a mis-tap (by its author, within 10 minutes)"""
        access = authorize(current_user(), patient_id, Action.LOG_DOSES)
        log = _dose(patient_id, dose_id)
        undo(db.session(), get_medication(patient_id, log.medication_id), log, access.user)
