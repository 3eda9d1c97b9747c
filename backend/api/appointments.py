"""``/patients/{id}/appointments``: book, edit, reschedule, cancel, and each one's history.

Times go in as RFC 3339 instants with any offset and come back with the offset of the
appointment's own zone (``time_zone``, the patient's zone unless given), so "09:00" reads
as 09:00 where the appointment is. A reschedule keeps the appointment (and its id) and
adds a history row with the old and new times; see backend/models/appointment.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
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
    validate_time_zone,
)
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import Appointment, AppointmentEvent, User
from backend.models.appointment import (
    APPOINTMENT_STATUSES,
    APPOINTMENT_TYPES,
    HISTORY_KINDS,
    MAX_LEAD_MINUTES,
    MAX_LEADS,
    MIN_LEAD_MINUTES,
    OUTCOMES,
)
from backend.services import appointments as service

blp = Blueprint("appointments", __name__, description="Appointments")

MAX_ID = 2**31 - 1
# Longer than a day is a stay, not an appointment; more likely a mistyped date.
MAX_LENGTH = timedelta(hours=24)
# Further ahead than this is a mistyped year (and year 9999 would overflow in UTC).
MAX_AHEAD = timedelta(days=5 * 366)
# Window filters outside this range can match nothing; refusing them keeps them in range
# of every database's timestamp type.
FILTER_RANGE = ma.validate.Range(
    min=datetime(2000, 1, 1, tzinfo=UTC), max=datetime(2100, 1, 1, tzinfo=UTC)
)


class Text(ma.fields.String):
    """Free text; NUL is refused (PostgreSQL cannot store it in a text column)."""

    default_error_messages = {"nul": "Must not contain NUL characters."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class ZonedInstant(ma.fields.AwareDateTime):
    """An instant, shown with the offset of the appointment's ``time_zone`` at that instant."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "iso")
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is not None:
            value = value.astimezone(ZoneInfo(obj.time_zone))
        return super()._serialize(value, attr, obj, **kwargs)


def _person(user_id: int | None) -> str | None:
    user = db.session.get(User, user_id) if user_id is not None else None
    return user.name if user is not None else None


def _name_of(attribute: str) -> ma.fields.Function:
    """The display name of the user an id field points at."""
    return ma.fields.Function(
        lambda obj: _person(getattr(obj, attribute)),
        dump_only=True,
        allow_none=True,
        metadata={"type": "string"},
    )


def _user_id(description: str) -> ma.fields.Integer:
    return ma.fields.Integer(
        allow_none=True,
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": description},
    )


def _unique(values: list[int]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("Each lead time once.")


def _check_times(start: Any, end: Any) -> None:
    if end <= start:
        raise ma.ValidationError("Must be after the start.", "end")
    if end - start > MAX_LENGTH:
        raise ma.ValidationError("An appointment lasts at most 24 hours.", "end")
    at = now()
    if start <= at:
        raise ma.ValidationError("Must be in the future.", "start")
    if start - at > MAX_AHEAD:
        raise ma.ValidationError("More than five years ahead; check the year.", "start")


class _Editable(BaseSchema):
    """What PATCH may change; the create schema adds the times."""

    title = Text(
        required=True, validate=trimmed(200), metadata={"example": "Endocrinology follow-up"}
    )
    type = ma.fields.String(required=True, validate=Choice("AppointmentType", APPOINTMENT_TYPES))
    provider_name = Text(
        allow_none=True, validate=trimmed(200), metadata={"example": "Dr. Lucía Ortega"}
    )
    provider_user_id = _user_id("A member of the patient's care team who sees them")
    location = Text(
        allow_none=True,
        validate=trimmed(500),
        metadata={"description": "Required for in_person and lab; none for telehealth"},
    )
    video_url = ma.fields.Url(
        allow_none=True,
        schemes={"https"},
        validate=ma.validate.Length(max=2000),
        metadata={"description": "Telehealth only; https"},
    )
    preparation_notes = Text(
        allow_none=True,
        validate=ma.validate.Length(max=4000),
        metadata={"example": "Fasting from midnight; water is fine."},
    )
    transport_needed = ma.fields.Boolean()
    attendee_user_id = _user_id("The caregiver who goes along (must have access to appointments)")
    reminder_lead_minutes = ma.fields.List(
        ma.fields.Integer(validate=ma.validate.Range(min=MIN_LEAD_MINUTES, max=MAX_LEAD_MINUTES)),
        validate=[ma.validate.Length(max=MAX_LEADS), _unique],
        metadata={
            "description": "Minutes before the start to remind; default [1440, 120]",
            "example": [1440, 120],
        },
    )


class AppointmentSchema(_Editable):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    start = ZonedInstant(
        required=True, attribute="start_at", metadata={"example": "2026-12-03T09:00:00-05:00"}
    )
    end = ZonedInstant(
        required=True, attribute="end_at", metadata={"example": "2026-12-03T09:30:00-05:00"}
    )
    time_zone = ma.fields.String(
        validate=validate_time_zone,
        metadata={
            "description": "Zone the times are shown in; default the patient's",
            "example": "America/New_York",
        },
    )
    status = ma.fields.String(
        dump_only=True, validate=Choice("AppointmentStatus", APPOINTMENT_STATUSES)
    )
    provider_user_name = _name_of("provider_user_id")
    attendee_name = _name_of("attendee_user_id")
    created_by_user_id = ma.fields.Integer(dump_only=True)
    created_at = Instant(dump_only=True)
    updated_by_user_id = ma.fields.Integer(dump_only=True)
    updated_at = Instant(dump_only=True)

    @ma.validates_schema
    def _times(self, data: dict[str, Any], **_: Any) -> None:
        _check_times(data["start_at"], data["end_at"])


class AppointmentUpdateSchema(_Editable):
    status = ma.fields.String(
        validate=Choice("AppointmentOutcome", OUTCOMES),
        metadata={"description": "Record the outcome, once it has started (cancel: /cancel)"},
    )


class AppointmentRescheduleSchema(BaseSchema):
    start = Instant(required=True)
    end = Instant(required=True)
    time_zone = ma.fields.String(
        validate=validate_time_zone, metadata={"description": "Default: unchanged"}
    )
    reason = Text(allow_none=True, validate=trimmed(500))

    @ma.validates_schema
    def _times(self, data: dict[str, Any], **_: Any) -> None:
        _check_times(data["start"], data["end"])


class AppointmentCancelSchema(BaseSchema):
    reason = Text(allow_none=True, validate=trimmed(500))


class AppointmentFilter(BaseSchema):
    from_ = Instant(
        data_key="from",
        validate=FILTER_RANGE,
        metadata={"description": "Those that end after this"},
    )
    to = Instant(validate=FILTER_RANGE, metadata={"description": "Those that start before this"})
    status = ma.fields.String(validate=Choice("AppointmentStatus", APPOINTMENT_STATUSES))

    @ma.validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        if "from_" in data and "to" in data and data["to"] <= data["from_"]:
            raise ma.ValidationError("Must be after 'from'.", "to")


class AppointmentHistoryEntrySchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    at = Instant(dump_only=True)
    by_user_id = ma.fields.Integer(dump_only=True)
    by_name = _name_of("by_user_id")
    kind = ma.fields.String(dump_only=True, validate=Choice("AppointmentChangeKind", HISTORY_KINDS))
    from_ = ma.fields.Dict(
        attribute="from_value",
        data_key="from",
        dump_only=True,
        allow_none=True,
        metadata={"description": "Values before: times with offsets for a reschedule"},
    )
    to = ma.fields.Dict(attribute="to_value", dump_only=True, allow_none=True)
    reason = ma.fields.String(dump_only=True, allow_none=True)


def _appointment(patient_id: int, appointment_id: int) -> Appointment:
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient_id:
        fail(404, "No such appointment.")
    return appointment


@blp.route("/patients/<int:patient_id>/appointments")
class Appointments(MethodView):
    @blp.arguments(AppointmentFilter, location="query")
    @blp.response(200, AppointmentSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int) -> Select[Any]:
        """The patient's appointments by start time; filter by a window and a status"""
        authorize(current_user(), patient_id, Action.VIEW_APPOINTMENTS)
        stmt = select(Appointment).where(Appointment.patient_id == patient_id)
        if "from_" in filters:
            stmt = stmt.where(Appointment.end_at > filters["from_"])
        if "to" in filters:
            stmt = stmt.where(Appointment.start_at < filters["to"])
        if "status" in filters:
            stmt = stmt.where(Appointment.status == filters["status"])
        return stmt.order_by(Appointment.start_at, Appointment.id)

    @blp.arguments(
        AppointmentSchema,
        example={
            "title": "Diabetes check",
            "type": "in_person",
            "start": "2026-12-01T10:00:00-05:00",
            "end": "2026-12-01T10:30:00-05:00",
            "time_zone": "America/New_York",
            "location": "Riverside clinic, room 4",
            "provider_name": "Dr. Okafor",
        },
    )
    @blp.response(201, AppointmentSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Appointment:
        """Book an appointment"""
        access = authorize(current_user(), patient_id, Action.MANAGE_APPOINTMENTS)
        return service.book(db.session(), access.patient, access.user, data)


@blp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>")
class AppointmentById(MethodView):
    @blp.response(200, AppointmentSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, appointment_id: int) -> Appointment:
        """One appointment"""
        authorize(current_user(), patient_id, Action.VIEW_APPOINTMENTS)
        return _appointment(patient_id, appointment_id)

    @blp.arguments(AppointmentUpdateSchema(partial=True))
    @blp.response(200, AppointmentSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, changes: dict[str, Any], patient_id: int, appointment_id: int) -> Appointment:
        """Edit details, or record the outcome (completed, no_show) once it has started"""
        access = authorize(current_user(), patient_id, Action.MANAGE_APPOINTMENTS)
        appointment = _appointment(patient_id, appointment_id)
        service.edit(db.session(), appointment, access.user, changes)
        return appointment


@blp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/reschedule")
class RescheduleAppointment(MethodView):
    @blp.arguments(AppointmentRescheduleSchema)
    @blp.response(200, AppointmentSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int, appointment_id: int) -> Appointment:
        """Move a booked appointment to a new time; its history keeps the old one"""
        access = authorize(current_user(), patient_id, Action.MANAGE_APPOINTMENTS)
        appointment = _appointment(patient_id, appointment_id)
        service.reschedule(db.session(), appointment, access.user, **data)
        return appointment


@blp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/cancel")
class CancelAppointment(MethodView):
    @blp.arguments(AppointmentCancelSchema, required=False)
    @blp.response(200, AppointmentSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int, appointment_id: int) -> Appointment:
        """Cancel a booked appointment"""
        access = authorize(current_user(), patient_id, Action.MANAGE_APPOINTMENTS)
        appointment = _appointment(patient_id, appointment_id)
        service.cancel(db.session(), appointment, access.user, data.get("reason"))
        return appointment


@blp.route("/patients/<int:patient_id>/appointments/<int:appointment_id>/history")
class AppointmentHistory(MethodView):
    @blp.response(200, AppointmentHistoryEntrySchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, appointment_id: int) -> Select[Any]:
        """Every change to the appointment, oldest first: who, when, before and after"""
        authorize(current_user(), patient_id, Action.VIEW_APPOINTMENTS)
        _appointment(patient_id, appointment_id)
        return (
            select(AppointmentEvent)
            .where(AppointmentEvent.appointment_id == appointment_id)
            .order_by(AppointmentEvent.id)
        )
