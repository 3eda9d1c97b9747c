"""Escalation chains (``/patients/{id}/escalation``) and the phone's answers to a push:
"I'm on it" on an alert and the list of one's alerts, snooze, opened (``/me/...``)."""

from __future__ import annotations

from datetime import datetime
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
    EchoSchema,
    Enum,
    Instant,
    PaginatedSelect,
    RecordId,
    error_responses,
)
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import Medication, User
from backend.models.escalation import DoseAcknowledgement, EscalationChain
from backend.models.outbox import REMINDER_KINDS, STATES, Reminder
from backend.reminders.escalation import MAX_AFTER_MINUTES, MAX_STEPS, TARGETS, default_chain
from backend.reminders.snoozes import snooze
from backend.services import alerts
from backend.services.escalation import set_chain
from notifications.outbox import mark_opened

blp = Blueprint("reminders", __name__, description="Reminders and escalation")


class StepSchema(EchoSchema):
    after_minutes = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=MAX_AFTER_MINUTES),
        metadata={"description": "Minutes after the dose's time"},
    )
    notify = ma.fields.String(required=True, validate=Choice("StepTarget", TARGETS))
    user_id = RecordId(
        allow_none=True, metadata={"description": "The caregiver, when notify is 'caregiver'"}
    )

    @ma.validates_schema
    def _caregiver_named(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("notify") == "caregiver") != (data.get("user_id") is not None):
            message = "Name a user_id exactly when notify is 'caregiver'."
            raise ma.ValidationError(message, "user_id")


class ChainUpdateSchema(BaseSchema):
    medication_id = RecordId(
        allow_none=True, metadata={"description": "One medicine's override; none: the patient's"}
    )
    steps = ma.fields.List(
        ma.fields.Nested(StepSchema),
        required=True,
        allow_none=True,
        validate=ma.validate.Length(max=MAX_STEPS),
        metadata={"description": "In order; null goes back to the default"},
    )

    @ma.validates_schema  # after the steps themselves are valid (skip_on_field_errors)
    def _ascending(self, data: dict[str, Any], **_: Any) -> None:
        minutes = [s["after_minutes"] for s in data.get("steps") or []]
        if minutes != sorted(set(minutes)):
            message = "Steps go in order, each later than the one before."
            raise ma.ValidationError(message, "steps")


class OverrideSchema(BaseSchema):
    medication_id = ma.fields.Integer(required=True)
    steps = ma.fields.List(ma.fields.Nested(StepSchema), required=True)


class ChainSchema(BaseSchema):
    steps = ma.fields.List(ma.fields.Nested(StepSchema), required=True)
    is_default = ma.fields.Boolean(required=True)
    overrides = ma.fields.List(ma.fields.Nested(OverrideSchema), required=True)


class SnoozeSchema(BaseSchema):
    minutes = ma.fields.Integer(required=True, validate=ma.validate.Range(min=5, max=60))


class ReminderSchema(BaseSchema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, validate=Choice("ReminderKind", REMINDER_KINDS))
    patient_id = ma.fields.Integer(allow_none=True)
    state = ma.fields.String(required=True, validate=Choice("ReminderState", STATES))
    due_at = Instant(required=True)
    sent_at = Instant(allow_none=True)
    opened_at = Instant(allow_none=True)
    subject = ma.fields.Dict(required=True)
    acknowledged_by_user_id = ma.fields.Integer(allow_none=True)
    acknowledged_by_name = ma.fields.String(allow_none=True)
    acknowledged_at = Instant(allow_none=True)


class AlertSchema(BaseSchema):
    id = ma.fields.Integer(required=True, metadata={"description": "The alert's reminder id"})
    patient_id = ma.fields.Integer(required=True)
    patient_name = ma.fields.String(required=True)
    medication_id = ma.fields.Integer(required=True)
    slot_key = ma.fields.String(required=True)
    dose_at = Instant(required=True, metadata={"description": "The dose's scheduled time"})
    sent_at = Instant(required=True)
    opened_at = Instant(required=True, allow_none=True)
    status = Enum(
        "AlertStatus",
        [s.value for s in alerts.AlertStatus],
        required=True,
        metadata={
            "description": "open: nobody took it and the dose is not logged; taken: someone "
            'said "I\'m on it"; dose_logged: the dose was logged (taken or skipped)'
        },
    )
    taken_by_user_id = ma.fields.Integer(required=True, allow_none=True)
    taken_by_name = ma.fields.String(required=True, allow_none=True)
    taken_at = Instant(required=True, allow_none=True)
    taken_by_me = ma.fields.Boolean(required=True)


class AlertPage(PaginatedSelect):
    def __init__(self, collection: Any, page_params: Any, cared: dict[int, Any]) -> None:
        super().__init__(collection, page_params)
        self.cared = cared

    @property
    def items(self) -> list[Any]:
        user = current_user()
        found = list(db.session.scalars(self.paged()))
        return [
            _alert_view(v, user) for v in alerts.describe(db.session(), user, found, self.cared)
        ]


def _alert_view(view: alerts.AlertView, user: User) -> dict[str, Any]:
    r, ack = view.reminder, view.ack
    subject = r.subject or {}
    return {
        "id": r.id,
        "patient_id": view.patient.id,
        "patient_name": view.patient.display_name,
        "medication_id": int(subject["medication_id"]),
        "slot_key": str(subject["slot_key"]),
        "dose_at": datetime.fromisoformat(str(subject["dose_at"])),
        "sent_at": r.sent_at,
        "opened_at": r.opened_at,
        "status": view.status.value,
        "taken_by_user_id": ack.user_id if ack else None,
        "taken_by_name": view.taker.name if view.taker else None,
        "taken_at": ack.at if ack else None,
        "taken_by_me": ack is not None and ack.user_id == user.id,
    }


def _chain_view(patient_id: int, managed: bool) -> dict[str, Any]:
    rows = list(
        db.session.scalars(
            select(EscalationChain)
            .where(EscalationChain.patient_id == patient_id)
            .order_by(EscalationChain.id)
        )
    )
    own = next((c for c in rows if c.medication_id is None), None)
    default = [s.as_json() for s in default_chain(Medication(time_critical=False), managed)]
    return {
        "steps": own.steps if own else default,
        "is_default": own is None,
        "overrides": [
            {"medication_id": c.medication_id, "steps": c.steps}
            for c in rows
            if c.medication_id is not None
        ],
    }


@blp.route("/patients/<int:patient_id>/escalation")
class Escalation(MethodView):
    @blp.response(200, ChainSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> dict[str, Any]:
        """Who is told, after how long, when a dose is not logged"""
        access = authorize(current_user(), patient_id, Action.VIEW_PATIENT)
        return _chain_view(patient_id, access.patient.is_managed)

    @blp.arguments(ChainUpdateSchema)
    @blp.response(200, ChainSchema)
    @error_responses(blp, 403, 404, 409)
    def put(self, data: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Set the chain (the patient or managing caregiver), or one medicine's override"""
        access = authorize(current_user(), patient_id, Action.MANAGE_ACCESS)
        set_chain(
            db.session(), access.patient, access.user, data.get("medication_id"), data["steps"]
        )
        return _chain_view(patient_id, access.patient.is_managed)


def _own(reminder_id: int, what: str = "reminder") -> Reminder:
    user = current_user()
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.user_id != user.id:
        fail(404, f"No such {what}.")
    if reminder.patient_id is not None:
        authorize(user, reminder.patient_id, Action.VIEW_PATIENT)
    return reminder


def _view(reminder: Reminder) -> dict[str, Any]:
    subject = reminder.subject or {}
    ack = None
    if "slot_key" in subject:
        ack = db.session.scalar(
            select(DoseAcknowledgement).where(
                DoseAcknowledgement.medication_id == int(subject["medication_id"]),
                DoseAcknowledgement.slot_key == str(subject["slot_key"]),
            )
        )
    by = db.session.get(User, ack.user_id) if ack else None
    return {
        "id": reminder.id,
        "kind": reminder.kind,
        "patient_id": reminder.patient_id,
        "state": reminder.state,
        "due_at": reminder.due_at,
        "sent_at": reminder.sent_at,
        "opened_at": reminder.opened_at,
        "subject": subject,
        "acknowledged_by_user_id": ack.user_id if ack else None,
        "acknowledged_by_name": by.name if by else None,
        "acknowledged_at": ack.at if ack else None,
    }


@blp.route("/me/alerts")
class MyAlerts(MethodView):
    @blp.response(200, AlertSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: Any) -> list[dict[str, Any]]:
        """Missed-dose alerts that reached you (7 days), newest first, with who took each"""
        stmt, cared = alerts.mine(current_user(), now())
        return AlertPage(stmt, pagination_parameters, cared).items


@blp.route("/me/alerts/<int:reminder_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @blp.response(200, ReminderSchema)
    @error_responses(blp, 404, 409)
    def post(self, reminder_id: int) -> dict[str, Any]:
        """ "I'm on it" on an alert that reached you: the later steps to others stop"""
        reminder = _own(reminder_id, "alert")
        if reminder.kind != "missed_dose_alert":
            fail(404, "No such alert.")
        alerts.take(db.session(), reminder, now())
        return _view(reminder)


@blp.route("/me/reminders/<int:reminder_id>/snooze")
class Snooze(MethodView):
    @blp.arguments(SnoozeSchema)
    @blp.response(200, ReminderSchema)
    @error_responses(blp, 404, 409)
    def post(self, data: dict[str, Any], reminder_id: int) -> dict[str, Any]:
        """Remind me again in N minutes (5-60); its follow-ups move with it"""
        reminder = _own(reminder_id)
        return _view(snooze(db.session(), reminder, data["minutes"], now()))


@blp.route("/me/reminders/<int:reminder_id>/opened")
class Opened(MethodView):
    @blp.response(200, ReminderSchema)
    @error_responses(blp, 404)
    def post(self, reminder_id: int) -> dict[str, Any]:
        """The app reports that the push was opened (its timeline records the first time)"""
        reminder = _own(reminder_id)
        mark_opened(db.session(), reminder, now())
        db.session.refresh(reminder)
        return _view(reminder)
