"""``/patients/{id}/checkin-schedules``: check-ins asked once or repeatedly (a FHIR Timing, as
for medicines), each prompt answerable for a while, and what became of each prompt.

The rules (anchor, answer window, how answers are matched to prompts) are in
``backend/services/checkin_schedules.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import Action, PatientAccess, authorize
from backend.api.blueprint import Blueprint
from backend.api.checkin_schemas import (
    template_organization_input,
    template_organization_output,
)
from backend.api.common import BaseSchema, Choice, Instant, PaginatedSelect, error_responses
from backend.api.timing import FhirTiming
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import CheckinSchedule
from backend.models.medication import TZ_POLICIES
from backend.reminders.checkin_prompts import window_prompts
from backend.services.checkin_schedules import (
    DEFAULT_ANSWER_WITHIN,
    STATUSES,
    cancel_schedule,
    format_duration,
    parse_duration,
    schedule_checkin,
)
from backend.services.checkins import hidden_from_caregivers, shown_to_caregivers

blp = Blueprint("checkin_schedules", __name__, description="Scheduled check-ins")

MAX_WINDOW = timedelta(days=31)
DEFAULT_WINDOW = timedelta(days=14)
SCHEDULE_STATES = ("active", "cancelled", "expired")


class Duration(ma.fields.String):
    """An ISO 8601 duration (``PT24H``, ``P2D``, ``PT90M``), loaded as a ``timedelta``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_duration(value)


class CheckinScheduleCreateSchema(BaseSchema):
    template = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "A template code (GET /checkin-templates)", "example": "PHQ-2"},
    )
    template_organization_id = template_organization_input()
    timing = FhirTiming(
        required=True,
        metadata={
            "description": "HL7 FHIR R4 Timing JSON, as for medicines. Once: "
            '{"event": ["2026-12-02T10:00:00-05:00"]} or {"repeat": {"count": 1}} (at '
            "starts_at); repeating: e.g. daily at 10:00 in the patient's zone",
            "example": {
                "repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:00"]}
            },
        },
    )
    starts_at = Instant(metadata={"description": "The schedule's anchor; default now"})
    answer_within = Duration(
        metadata={
            "description": "How long each prompt stays answerable (ISO 8601, PT15M to P7D); "
            "after that it is overdue. Default PT24H",
            "example": "PT24H",
        }
    )
    expires_at = Instant(
        allow_none=True, metadata={"description": "Nothing is due from then on; null: no end"}
    )
    tz_policy = ma.fields.String(
        validate=Choice("TimeZonePolicy", TZ_POLICIES),
        metadata={"description": "local: follow the patient's wall clock; home: keep instants"},
    )
    note = ma.fields.String(validate=ma.validate.Length(max=2000))


class CheckinScheduleSchema(ma.Schema):
    id = ma.fields.Integer()
    patient_id = ma.fields.Integer()
    template = ma.fields.String(attribute="template_code", metadata={"example": "PHQ-2"})
    template_organization_id = template_organization_output()
    timing = FhirTiming(metadata={"description": "The FHIR R4 Timing, as given"})
    tz_policy = ma.fields.String()
    home_time_zone = ma.fields.String()
    starts_at = Instant()
    answer_within = Duration(metadata={"example": "PT24H"})
    expires_at = Instant(allow_none=True)
    status = ma.fields.Method(
        "_status",
        validate=Choice("CheckinScheduleStatus", list(SCHEDULE_STATES)),
    )
    note = ma.fields.String()
    created_by_user_id = ma.fields.Integer()
    created_at = Instant()
    cancelled_at = Instant(allow_none=True)
    cancelled_by_user_id = ma.fields.Integer(allow_none=True)

    def _status(self, schedule: CheckinSchedule) -> str:
        return schedule.state_at(now())


class ScheduleFilter(BaseSchema):
    status = ma.fields.String(validate=Choice("CheckinScheduleStatus", SCHEDULE_STATES))


class OccurrenceWindow(BaseSchema):
    from_ = Instant(
        data_key="from", metadata={"description": "Default: 7 days before now (or 14 before to)"}
    )
    to = Instant(
        metadata={"description": "Default: 7 days after now (or 14 after from); at most 31 days"}
    )


class CheckinOccurrenceSchema(ma.Schema):
    slot_key = ma.fields.String()
    due_at = Instant()
    answer_by = Instant(attribute="deadline", metadata={"description": "Overdue after this"})
    status = ma.fields.String(validate=Choice("CheckinStatus", STATUSES))
    response_id = ma.fields.Integer(allow_none=True)
    answered_at = Instant(allow_none=True)


def get_schedule(access: PatientAccess, schedule_id: int) -> CheckinSchedule:
    """The patient's schedule; a caregiver does not see the schedules of templates whose
    answers they never see (SOCIAL-NEEDS)."""
    schedule = db.session.get(CheckinSchedule, schedule_id)
    if schedule is None or schedule.patient_id != access.patient.id:
        fail(404, "No such check-in schedule.")
    key = schedule.template_key
    if access.is_caregiver and key in hidden_from_caregivers(db.session(), [key]):
        fail(404, "No such check-in schedule.")
    return schedule


@blp.route("/patients/<int:patient_id>/checkin-schedules")
class CheckinSchedules(MethodView):
    @blp.arguments(ScheduleFilter, location="query")
    @blp.response(200, CheckinScheduleSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int, pagination_parameters: Any) -> Any:
        """The patient's check-in schedules, newest first"""
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        stmt = select(CheckinSchedule).where(CheckinSchedule.patient_id == patient_id)
        if access.is_caregiver:
            stmt = stmt.where(shown_to_caregivers(CheckinSchedule))
        state, at = filters.get("status"), now()
        if state == "cancelled":
            stmt = stmt.where(CheckinSchedule.status == "cancelled")
        elif state == "expired":
            stmt = stmt.where(
                CheckinSchedule.status == "active",
                CheckinSchedule.expires_at.is_not(None),
                CheckinSchedule.expires_at <= at,
            )
        elif state == "active":
            stmt = stmt.where(
                CheckinSchedule.status == "active",
                (CheckinSchedule.expires_at.is_(None)) | (CheckinSchedule.expires_at > at),
            )
        stmt = stmt.order_by(CheckinSchedule.created_at.desc(), CheckinSchedule.id.desc())
        return PaginatedSelect(stmt, pagination_parameters).items

    @blp.arguments(CheckinScheduleCreateSchema)
    @blp.response(201, CheckinScheduleSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> CheckinSchedule:
        """Schedule a check-in, once or repeating; its prompts are planned at once"""
        access = authorize(current_user(), patient_id, Action.MANAGE_CHECKINS)
        return schedule_checkin(
            db.session(),
            patient_id=patient_id,
            template_code=data["template"],
            template_organization_id=data.get("template_organization_id"),
            timing=data["timing"],
            answer_within=data.get("answer_within", DEFAULT_ANSWER_WITHIN),
            expires_at=data.get("expires_at"),
            created_by_user_id=access.user.id,
            note=data.get("note", ""),
            starts_at=data.get("starts_at"),
            tz_policy=data.get("tz_policy", "local"),
        )


@blp.route("/patients/<int:patient_id>/checkin-schedules/<int:schedule_id>")
class CheckinScheduleById(MethodView):
    @blp.response(200, CheckinScheduleSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, schedule_id: int) -> CheckinSchedule:
        """One check-in schedule"""
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        return get_schedule(access, schedule_id)


@blp.route("/patients/<int:patient_id>/checkin-schedules/<int:schedule_id>/cancel")
class CancelCheckinSchedule(MethodView):
    @blp.response(200, CheckinScheduleSchema)
    @error_responses(blp, 403, 404)
    def post(self, patient_id: int, schedule_id: int) -> CheckinSchedule:
        """Cancel a check-in schedule and the prompts still pending (again: no change)"""
        access = authorize(current_user(), patient_id, Action.MANAGE_CHECKINS)
        schedule = get_schedule(access, schedule_id)
        cancel_schedule(db.session(), schedule, access.user.id)
        return schedule


@blp.route("/patients/<int:patient_id>/checkin-schedules/<int:schedule_id>/occurrences")
class CheckinOccurrences(MethodView):
    @blp.arguments(OccurrenceWindow, location="query")
    @blp.response(200, CheckinOccurrenceSchema(many=True))
    @error_responses(blp, 403, 404)
    def get(self, window: dict[str, Any], patient_id: int, schedule_id: int) -> Any:
        """Each prompt due in a window, oldest first, with its status"""
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        schedule = get_schedule(access, schedule_id)
        at = now()
        start: datetime | None = window.get("from_")
        end: datetime | None = window.get("to")
        if start is None:
            start = at - timedelta(days=7) if end is None else end - DEFAULT_WINDOW
        if end is None:
            end = at + timedelta(days=7) if "from_" not in window else start + DEFAULT_WINDOW
        if not start < end <= start + MAX_WINDOW:
            fail(
                422,
                "The window must be positive and at most 31 days.",
                errors={"query": {"to": ["After from, and at most 31 days after it."]}},
            )
        return window_prompts(db.session(), schedule, access.patient, start, end, at)
