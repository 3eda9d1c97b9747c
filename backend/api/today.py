"""``/me/today``: what the phone opens to -- each cared-for person's day in their own zone."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, current_app
from flask.views import MethodView

from backend import db
from backend.api.appointments import ZonedInstant
from backend.api.blueprint import Blueprint
from backend.api.careplans import CarePlanActivitySchema
from backend.api.checkin_schemas import template_organization_output
from backend.api.common import BaseSchema, Choice, Day, Instant
from backend.auth import current_sign_in, signed_in
from backend.clock import now
from backend.reminders.device_health import PROBLEMS
from backend.services.checkin_schedules import STATUSES as CHECKIN_STATUSES
from backend.services.today import DayView, PatientDay, read_today, today_views
from backend.services.today_cache import Sections

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
    next_allowed_at = Instant(
        allow_none=True,
        metadata={"description": "When the next dose is allowed; null: one may be taken now"},
    )
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


def render_day(d: PatientDay) -> Sections:
    """A computed day's sections as the JSON this route sends (kept in the today cache)."""
    return {
        "doses": _dumps(_DOSES.dump(d.doses)),
        "extra_doses": _dumps(_EXTRA.dump(d.extra_doses)),
        "prn": _dumps(_PRN.dump(d.prn)),
        "appointments": _dumps(_APPOINTMENTS.dump(d.appointments)),
        "activities": _dumps(_ACTIVITIES.dump(d.activities)),
        "checkins": _dumps(_CHECKINS.dump(d.checkins)),
        "checkins_for_caregivers": _dumps(_CHECKINS.dump(d.checkins_for_caregivers)),
    }


def _dumps(obj: Any) -> str:
    """JSON as every other answer is sent: compact (the spaces were a tenth of the body)."""
    return current_app.json.dumps(obj, separators=(",", ":"))


_DOSES = TodayDoseSchema(many=True)
_EXTRA = ExtraDoseSchema(many=True)
_PRN = TodayPrnSchema(many=True)
_APPOINTMENTS = TodayAppointmentSchema(many=True)
_ACTIVITIES = TodayActivitySchema(many=True)
_CHECKINS = TodayCheckinSchema(many=True)


def _patient_json(view: DayView) -> str:
    """One PatientDay object: the reader's facts rendered here, the sections spliced in as
    they were rendered when the day was computed (no object is built for a cached day)."""
    access = view.access
    head = _dumps(
        {
            "patient_id": access.patient.id,
            "display_name": access.patient.display_name,
            "my_role": access.role.value,
            "time_zone": access.patient.time_zone,
            "date": view.day.isoformat(),
        }
    )
    sections = "".join(
        f',"{name}":{"null" if text is None else text}' for name, text in view.sections.items()
    )
    return f"{head[:-1]}{sections}}}"


@blp.route("")
class Today(MethodView):
    @blp.arguments(TodayArgs, location="query")
    @blp.response(200, TodaySchema)
    def get(self, args: dict[str, Any]) -> Response:
        """Your day and the day of each person you care for, in their own zones"""
        at, requested = now(), args.get("date")
        sign_in = current_sign_in()
        lookup = read_today(db.session(), sign_in.reader(), requested, at)
        user = signed_in(lookup.user, lookup.signed_out)
        if lookup.user is None:  # the user id this process knew is gone; now signed in anew
            lookup = read_today(db.session(), sign_in.reader(user.id), requested, at)
        views = today_views(db.session(), user, lookup, requested, render_day, at)
        reach = _dumps(lookup.reach.as_json())
        patients = ",".join(_patient_json(v) for v in views)
        body = f'{{"patients":[{patients}],"reminders_reach_you":{reach}}}'
        return current_app.response_class(body, mimetype="application/json")
