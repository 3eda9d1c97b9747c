"""``/patients/{id}/care-plans``: the care plan, edited by several people with ETags, and its
revisions."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import Select, select
from sqlalchemy.orm.exc import StaleDataError

from backend import db
from backend.access import Action, authorize
from backend.api.common import (
    BaseSchema,
    Choice,
    EchoSchema,
    Instant,
    PaginatedSelect,
    error_responses,
    trimmed,
)
from backend.api.etags import EtagBlueprint
from backend.auth import current_user
from backend.errors import fail
from backend.models import User
from backend.models.careplan import (
    ACTIVITY_STATUSES,
    CONDITION_STATUSES,
    EDITABLE,
    GOAL_STATUSES,
    PLAN_STATUSES,
    RESPONSIBLE_KINDS,
    CarePlan,
    CarePlanRevision,
    unknown_item_ids,
)
from backend.services.careplans import (
    active_plan,
    fill_responsible_names,
    responsible_problems,
    start_plan,
)

blp = EtagBlueprint("careplans", __name__, description="Care plans")

# A plan is read on a phone by people who are not clinicians: a few dozen items at most.
MAX_ITEMS = 50
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError:
        pass
    else:
        if _ISO_DATE.fullmatch(value):
            return
    raise ma.ValidationError("Not a date (YYYY-MM-DD).")


def _no_nul(value: str) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ma.ValidationError("Text may not contain NUL characters.")


def _text(max_len: int) -> list[Any]:
    return [*trimmed(max_len), _no_nul]


def _items(schema: type[ma.Schema], **kwargs: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Nested(schema), validate=ma.validate.Length(max=MAX_ITEMS), **kwargs
    )


def _item_id(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Length(min=1, max=64),
        metadata={
            "description": "Given by the server; send it back to keep the item",
            "sent": True,
        },
        **kwargs,
    )


class CarePlanCodingSchema(EchoSchema):
    system = ma.fields.String(
        required=True,
        validate=_text(200),
        metadata={"example": "http://snomed.info/sct"},
    )
    code = ma.fields.String(required=True, validate=_text(100), metadata={"example": "44054006"})
    display = ma.fields.String(validate=_text(200), metadata={"example": "Type 2 diabetes"})


class CarePlanConditionSchema(EchoSchema):
    text = ma.fields.String(required=True, validate=_text(500))
    code = ma.fields.Nested(CarePlanCodingSchema, allow_none=True)
    status = ma.fields.String(
        load_default="active", validate=Choice("ConditionStatus", CONDITION_STATUSES)
    )


class CarePlanTargetSchema(EchoSchema):
    """A measurable target: in words, and optionally as a number to compare against."""

    text = ma.fields.String(
        required=True, validate=_text(500), metadata={"example": "HbA1c below 7%"}
    )
    measure = ma.fields.String(validate=_text(100), metadata={"example": "HbA1c"})
    comparator = ma.fields.String(validate=Choice("Comparator", ("<", "<=", "=", ">=", ">")))
    value = ma.fields.Float(allow_nan=False, metadata={"example": 7})
    unit = ma.fields.String(validate=_text(40), metadata={"example": "%"})

    @ma.validates_schema
    def _value_needs_a_measure(self, data: dict[str, Any], **_: Any) -> None:
        if "value" in data and "measure" not in data:
            raise ma.ValidationError("Say what is measured.", "measure")


class CarePlanGoalSchema(EchoSchema):
    id = _item_id()
    description = ma.fields.String(required=True, validate=_text(500))
    target = ma.fields.Nested(CarePlanTargetSchema, required=True)
    due_date = ma.fields.String(
        allow_none=True, validate=_iso_date, metadata={"format": "date", "example": "2027-03-01"}
    )
    status = ma.fields.String(load_default="proposed", validate=Choice("GoalStatus", GOAL_STATUSES))


class CarePlanResponsibleSchema(EchoSchema):
    """The patient, or a caregiver / care-team member: a user who has access to the patient
    (``user_id``), or someone outside the app by ``name``."""

    kind = ma.fields.String(required=True, validate=Choice("ResponsibleKind", RESPONSIBLE_KINDS))
    user_id = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "A user with access to the patient", "optional": True},
    )
    name = ma.fields.String(
        validate=_text(200),
        metadata={
            "description": "Someone outside the app; with user_id, the person's name",
            "optional": True,
        },
    )

    @ma.validates_schema
    def _who(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "patient" and "user_id" in data:
            raise ma.ValidationError("The patient is meant; leave user_id out.", "user_id")
        if data["kind"] != "patient" and "user_id" not in data and "name" not in data:
            raise ma.ValidationError("Give the person's user_id or name.", "user_id")


class CarePlanActivitySchema(EchoSchema):
    id = _item_id()
    description = ma.fields.String(required=True, validate=_text(500))
    frequency = ma.fields.String(
        allow_none=True, validate=_text(200), metadata={"example": "daily"}
    )
    responsible = ma.fields.Nested(CarePlanResponsibleSchema, required=True)
    status = ma.fields.String(
        load_default="open", validate=Choice("ActivityStatus", ACTIVITY_STATUSES)
    )


class CarePlanCreateSchema(BaseSchema):
    title = ma.fields.String(required=True, validate=_text(200))
    instructions = ma.fields.String(
        load_default="",
        validate=[ma.validate.Length(max=10_000), _no_nul],
        metadata={"description": "Plain-language instructions for the patient and family"},
    )
    conditions = _items(CarePlanConditionSchema, load_default=list)
    goals = _items(CarePlanGoalSchema, load_default=list)
    activities = _items(CarePlanActivitySchema, load_default=list)


class CarePlanUpdateSchema(CarePlanCreateSchema):
    status = ma.fields.String(
        validate=Choice("CarePlanStatus", PLAN_STATUSES),
        metadata={"description": "Set to completed to close the plan (it is kept, read-only)"},
    )


class CarePlanSchema(CarePlanCreateSchema):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    status = ma.fields.String(dump_only=True, validate=Choice("CarePlanStatus", PLAN_STATUSES))
    version = ma.fields.Integer(dump_only=True)
    created_by_user_id = ma.fields.Integer(dump_only=True)
    created_at = Instant(dump_only=True)
    updated_at = Instant(dump_only=True)
    completed_at = Instant(dump_only=True, allow_none=True)


class CarePlanRevisionSchema(BaseSchema):
    plan_id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    changed_by_user_id = ma.fields.Integer(dump_only=True)
    changed_by_name = ma.fields.Method(
        "_name", dump_only=True, allow_none=True, metadata={"type": "string"}
    )
    at = Instant(dump_only=True)
    changes = ma.fields.Dict(
        keys=ma.fields.String(validate=Choice("CarePlanSection", EDITABLE)),
        values=ma.fields.Dict(),
        dump_only=True,
        metadata={"description": 'What changed: {field: {"from": old, "to": new}}'},
    )

    def _name(self, revision: CarePlanRevision) -> str | None:
        user = db.session.get(User, revision.changed_by_user_id)
        return user.name if user else None


class CarePlanFilter(BaseSchema):
    status = ma.fields.String(validate=Choice("CarePlanStatus", PLAN_STATUSES))


def plan_etag(plan: CarePlan) -> str:
    """The plan's current ETag (what GET returns and PATCH expects in If-Match)."""
    return blp.tag(_etag_data(plan))


def _etag_data(plan: CarePlan) -> dict[str, int | str]:
    # The edit's instant (to the microsecond) as well as the version: a tag a client could
    # compute from the id and a version number would let it write without having read.
    return {"care_plan": plan.id, "version": plan.version, "at": plan.updated_at.isoformat()}


def _plan(patient_id: int, plan_id: int) -> CarePlan:
    plan = db.session.get(CarePlan, plan_id)
    if plan is None or plan.patient_id != patient_id:
        fail(404, "No such care plan.")
    return plan


def _check_items(patient_id: int, data: dict[str, Any], plan: CarePlan | None) -> None:
    """422 for item ids the server never gave, and for responsible people without access."""
    errors: dict[str, Any] = {}
    for name in ("goals", "activities"):
        if name not in data:
            continue
        sent = [item["id"] for item in data[name] if item.get("id")]
        repeated = sorted({i for i in sent if sent.count(i) > 1})
        unknown = unknown_item_ids(getattr(plan, name) if plan is not None else [], data[name])
        if unknown:
            errors[name] = [f"Ids this plan does not have (new items get theirs): {unknown}."]
        elif repeated:
            errors[name] = [f"Each id once: {repeated}."]
    if "activities" in data and "activities" not in errors:
        before = plan.activities if plan is not None else []
        problems = responsible_problems(db.session(), patient_id, data["activities"], before)
        if problems:
            errors["activities"] = {
                i: {"responsible": {"user_id": [message]}} for i, message in problems.items()
            }
    if errors:
        fail(422, "The request has invalid fields; see errors.", errors={"json": errors})


@blp.route("/patients/<int:patient_id>/care-plans")
class CarePlans(MethodView):
    @blp.arguments(CarePlanFilter, location="query")
    @blp.response(200, CarePlanSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, filters: dict[str, Any], patient_id: int) -> Select[Any]:
        """The patient's care plans, newest first (at most one is active)"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        stmt = select(CarePlan).where(CarePlan.patient_id == patient_id)
        if "status" in filters:
            stmt = stmt.where(CarePlan.status == filters["status"])
        return stmt.order_by(CarePlan.id.desc())

    @blp.etag
    @blp.arguments(CarePlanCreateSchema)
    @blp.response(201, CarePlanSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int) -> CarePlan:
        """Start a new care plan; the active one before it is completed and kept"""
        access = authorize(current_user(), patient_id, Action.EDIT_CARE_PLAN)
        _check_items(patient_id, data, None)
        data["activities"] = fill_responsible_names(db.session(), data["activities"])
        try:
            plan = start_plan(db.session(), patient_id, data, access.user.id)
        except StaleDataError:
            fail(409, "The active plan changed while this one was being started; try again.")
        blp.set_etag(_etag_data(plan))
        return plan


@blp.route("/patients/<int:patient_id>/care-plan")
class ActiveCarePlan(MethodView):
    @blp.etag
    @blp.response(200, CarePlanSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> CarePlan:
        """The patient's active care plan"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        plan = active_plan(db.session(), patient_id)
        if plan is None:
            fail(404, "This patient has no active care plan.")
        blp.set_etag(_etag_data(plan))
        return plan


@blp.route("/patients/<int:patient_id>/care-plans/<int:plan_id>")
class CarePlanById(MethodView):
    @blp.etag
    @blp.response(200, CarePlanSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, plan_id: int) -> CarePlan:
        """One care plan, with the ETag to send back when changing it"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        plan = _plan(patient_id, plan_id)
        blp.set_etag(_etag_data(plan))
        return plan

    @blp.etag
    @blp.arguments(CarePlanUpdateSchema(partial=(*EDITABLE,)))
    @blp.response(200, CarePlanSchema)
    @error_responses(blp, 403, 404, 409)
    def patch(self, changes: dict[str, Any], patient_id: int, plan_id: int) -> CarePlan:
        """Change a care plan (If-Match: its ETag); lists are replaced as sent"""
        access = authorize(current_user(), patient_id, Action.EDIT_CARE_PLAN)
        plan = _plan(patient_id, plan_id)
        blp.check_etag(_etag_data(plan))
        if not plan.is_active:
            fail(409, "This plan is completed and kept as it was; start a new plan instead.")
        _check_items(patient_id, changes, plan)
        if "activities" in changes:
            changes["activities"] = fill_responsible_names(db.session(), changes["activities"])
        revision = plan.apply(changes, access.user.id)
        if revision is not None:
            db.session.add(revision)
            try:
                # The UPDATE only matches the version we checked: a writer who got in between
                # leaves it matching no row.
                db.session.flush()
            except StaleDataError:
                fail(412, "Someone changed this plan at the same moment; nothing was saved.")
        blp.set_etag(_etag_data(plan))
        return plan


@blp.route("/patients/<int:patient_id>/care-plans/<int:plan_id>/revisions")
class CarePlanRevisions(MethodView):
    @blp.response(200, CarePlanRevisionSchema(many=True))
    @blp.paginate(PaginatedSelect)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, plan_id: int) -> Select[Any]:
        """Every change to a care plan: who, when and what, newest first"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        _plan(patient_id, plan_id)
        return (
            select(CarePlanRevision)
            .where(CarePlanRevision.plan_id == plan_id)
            .order_by(CarePlanRevision.version.desc())
        )
