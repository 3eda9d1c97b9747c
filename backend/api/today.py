"""``/me/today``: what the phone opens to -- each cared-for person's day in their own zone."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from backend import db
from backend.api.appointments import ZonedInstant
from backend.api.careplans import CarePlanActivitySchema
from backend.api.checkin_schemas import template_organization_output
from backend.api.common import BaseSchema, Choice, Day, Instant
from backend.auth import current_user
from backend.clock import now
from backend.reminders.device_health import PROBLEMS, reach_of
from backend.services.checkin_schedules import STATUSES as CHECKIN_STATUSES
from backend.services.today import PatientDay, build_today

blp = Blueprint("today", __name__, url_prefix="/me/today", description="The today view")

DOSE_STATUSES = ("upcoming", "due", "overdue", "taken", "late", "skipped", "missed")


class MedFields(ma.Schema):
    medication_id = ma.fields.Integer()
    name = ma.fields.String()
    strength = ma.fields.String(allow_none=True)
    instructions = ma.fields.String(allow_none=True)
    time_critical = ma.fields.Boolean()


class TodayDoseSchema(MedFields):
    slot_key = ma.fields.String()
    local_time = ma.fields.Time(format="%H:%M")
    at = Instant()
    status = ma.fields.String(validate=Choice("DoseStatus", DOSE_STATUSES))
    log_id = ma.fields.Integer(allow_none=True)
    taken_at = Instant(allow_none=True)


class ExtraDoseSchema(MedFields):
    log_id = ma.fields.Integer()
    taken_at = Instant()
    status = ma.fields.String()
    over_limit = ma.fields.Boolean()


class TodayPrnSchema(MedFields):
    taken_last_24h = ma.fields.Integer()
    max_per_24h = ma.fields.Integer(allow_none=True)
    last_taken_at = Instant(allow_none=True)
    next_allowed_at = Instant(allow_none=True)
    available_now = ma.fields.Boolean()


class TodayAppointmentSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    type = ma.fields.String()
    start = ZonedInstant(attribute="start_at")
    end = ZonedInstant(attribute="end_at")
    time_zone = ma.fields.String()
    location = ma.fields.String(allow_none=True)
    video_url = ma.fields.String(allow_none=True)
    preparation_notes = ma.fields.String(allow_none=True)
    transport_needed = ma.fields.Boolean()
    status = ma.fields.String()


class TodayActivitySchema(CarePlanActivitySchema):
    plan_id = ma.fields.Integer()


class TodayCheckinSchema(ma.Schema):
    schedule_id = ma.fields.Integer()
    template = ma.fields.String(metadata={"example": "PHQ-2"})
    template_organization_id = template_organization_output()
    due_at = Instant()
    answer_by = Instant()
    status = ma.fields.String(validate=Choice("CheckinStatus", CHECKIN_STATUSES))
    response_id = ma.fields.Integer(allow_none=True)


class PatientDaySchema(ma.Schema):
    patient_id = ma.fields.Integer()
    display_name = ma.fields.String()
    my_role = ma.fields.String()
    time_zone = ma.fields.String()
    date = Day()
    doses = ma.fields.List(
        ma.fields.Nested(TodayDoseSchema),
        allow_none=True,
        metadata={"description": "null: you may not see medicines"},
    )
    extra_doses = ma.fields.List(ma.fields.Nested(ExtraDoseSchema), allow_none=True)
    prn = ma.fields.List(ma.fields.Nested(TodayPrnSchema), allow_none=True)
    appointments = ma.fields.List(
        ma.fields.Nested(TodayAppointmentSchema),
        allow_none=True,
        metadata={"description": "null: you may not see appointments"},
    )
    activities = ma.fields.List(
        ma.fields.Nested(TodayActivitySchema),
        allow_none=True,
        metadata={"description": "Open care-plan activities; null: you may not see the plan"},
    )
    checkins = ma.fields.List(
        ma.fields.Nested(TodayCheckinSchema),
        allow_none=True,
        metadata={"description": "Check-ins due that day; null: you may not see check-ins"},
    )


class ReachSchema(ma.Schema):
    ok = ma.fields.Boolean(metadata={"description": "Reminders can reach one of your phones"})
    problem = ma.fields.String(
        allow_none=True,
        validate=Choice("ReachProblem", PROBLEMS),
        metadata={
            "description": "Why not: no_device (the app is not signed in on any phone), "
            "tokens_rejected (push refused the phones: open the app again), "
            "notifications_off (turned off on every phone), not_seen (no phone opened the "
            "app for 7 days). null when ok"
        },
    )


class TodaySchema(ma.Schema):
    reminders_reach_you = ma.fields.Nested(ReachSchema)
    patients = ma.fields.List(ma.fields.Nested(PatientDaySchema))


class TodayArgs(BaseSchema):
    date = Day(metadata={"description": "A local date; default: today in each zone"})


def _view(d: PatientDay) -> dict[str, Any]:
    return {
        "patient_id": d.access.patient.id,
        "display_name": d.access.patient.display_name,
        "my_role": d.access.role.value,
        "time_zone": d.access.patient.time_zone,
        "date": d.day,
        "doses": d.doses,
        "extra_doses": d.extra_doses,
        "prn": d.prn,
        "appointments": d.appointments,
        "activities": d.activities,
        "checkins": d.checkins,
    }


@blp.route("")
class Today(MethodView):
    @blp.arguments(TodayArgs, location="query")
    @blp.response(200, TodaySchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your day and the day of each person you care for, in their own zones"""
        user = current_user()
        days = build_today(db.session(), user, args.get("date"))
        reach = reach_of(db.session(), user.id, now())
        return {"reminders_reach_you": reach.as_json(), "patients": [_view(d) for d in days]}
