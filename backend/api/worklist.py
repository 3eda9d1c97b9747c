"""The coordinator's worklist (``/worklist``): open items across the patients of every care
team the user is on, urgent first and then oldest first; acknowledge, assign, resolve.

Visibility is team membership, the same rule as the rest of the care-team access: an item
about a patient none of your teams has enrolled does not exist for you (404). Every action
is written to the item's trail and, like any use of a patient's record, to the access log.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import literal_column, select

from backend import db
from backend.access import my_team_ids, panel_patient_ids, record_panel_access
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    Choice,
    Instant,
    Optional,
    PaginatedSelect,
    Pattern,
    RecordId,
    Scalar,
    error_responses,
)
from backend.auth import current_user
from backend.errors import fail
from backend.models import CareTeamMember, Patient, User
from backend.models.transition import ENCOUNTER_KINDS, TASK_KINDS
from backend.models.worklist import (
    EVENT_ACTIONS,
    STATUSES,
    WORK_ITEM_KINDS,
    WorkItem,
    WorkItemEvent,
)
from backend.reminders.audience import care_team_user_ids
from backend.services import worklist

blp = Blueprint("worklist", __name__, description="The care team's worklist")

NOTE_MAX = 2000


class WorklistArgs(BaseSchema):
    team_id = RecordId(metadata={"description": "Only patients of this team (one of yours)"})
    patient_id = RecordId()
    kind = ma.fields.String(validate=Choice("WorkItemKind", WORK_ITEM_KINDS))
    status = ma.fields.String(
        load_default="unresolved",
        validate=Choice("WorklistStatusFilter", ("unresolved", *STATUSES)),
        metadata={"description": "unresolved (default: open and acknowledged) or one status"},
    )
    assigned_to = ma.fields.String(
        validate=Pattern(r"^(me|[1-9][0-9]{0,9})$"),
        metadata={"description": "'me' or a user id"},
    )
    urgent = ma.fields.Boolean()


class PersonSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


def _stamp(description: str) -> ma.fields.Field:
    return Optional(
        ma.fields.String(
            allow_none=True, metadata={"format": "date-time", "description": description}
        )
    )


def _count(description: str) -> ma.fields.Field:
    return Optional(ma.fields.Integer(allow_none=True, metadata={"description": description}))


class MedicineTallySchema(ma.Schema):
    medication_id = ma.fields.Integer()
    name = ma.fields.String()
    missed = ma.fields.Integer()


class WorkItemEvidenceSchema(ma.Schema):
    """What raised an item; which fields are there depends on its kind."""

    # checkin_overdue; safety, checkin_flag and social_need (a flag rule that fired)
    schedule_id = _count("checkin_overdue: the check-in schedule")
    template = Optional(
        ma.fields.String(allow_none=True, metadata={"description": "The check-in's template"})
    )
    template_organization_id = Optional(
        ma.fields.Integer(
            allow_none=True,
            metadata={"description": "Whose template: null for a built-in (see template)"},
        )
    )
    due_at = _stamp("checkin_overdue, transition_task: when it was due")
    occurrences_missed = _count("checkin_overdue: check-ins not answered")
    response_id = _count("A flag: the check-in response")
    rule = Optional(
        ma.fields.String(allow_none=True, metadata={"description": "A flag: the rule that fired"})
    )
    item = Optional(
        ma.fields.String(allow_none=True, metadata={"description": "A flag: the item it read"})
    )
    value = Optional(Scalar(allow_none=True, metadata={"description": "A flag: the answer"}))
    # missed_doses, low_adherence
    missed = _count("missed_doses: doses missed")
    scheduled = _count("missed_doses: doses scheduled")
    days = _count("missed_doses, low_adherence: the days looked at")
    pdc = Optional(
        ma.fields.Float(
            allow_none=True, metadata={"description": "low_adherence: days covered, 0-1"}
        )
    )
    days_covered = _count("low_adherence")
    days_with_doses = _count("low_adherence")
    medications = Optional(
        ma.fields.List(
            ma.fields.Nested(MedicineTallySchema),
            metadata={"description": "missed_doses, low_adherence: by medicine"},
        )
    )
    # encounter, transition_task, no_follow_up
    encounter_id = _count("encounter: the hospital or ER encounter")
    encounter_kind = Optional(
        ma.fields.String(
            validate=Choice("EncounterKind", ENCOUNTER_KINDS), metadata={"description": "encounter"}
        )
    )
    # prn_over_limit
    medication_id = _count("prn_over_limit: the as-needed medicine")
    dose_log_id = _count("prn_over_limit: the dose over the maximum")
    taken_last_24h = _count("prn_over_limit: doses in the 24 hours up to that one")
    max_per_24h = _count("prn_over_limit: the medicine's maximum in 24 hours")
    logged_by_user_id = _count("prn_over_limit: who logged the dose")
    discharge_id = _count("The discharge it follows")
    days_after_discharge = _count("encounter")
    discharged_at = _stamp("no_follow_up")
    book_by = _stamp("no_follow_up: book a visit by then")
    task = Optional(
        ma.fields.String(
            validate=Choice("TransitionTaskKind", TASK_KINDS),
            metadata={"description": "transition_task: the checklist task"},
        )
    )


class WorkItemEventDetailSchema(ma.Schema):
    evidence_at = _stamp("opened, updated: the newest evidence")
    assigned_to_user_id = _count("assigned: to whom")


class WorkItemSchema(ma.Schema):
    id = ma.fields.Integer()
    patient = ma.fields.Nested(PersonSchema)
    kind = ma.fields.String(validate=Choice("WorkItemKind", WORK_ITEM_KINDS))
    urgent = ma.fields.Boolean()
    title = ma.fields.String()
    detail = ma.fields.Nested(
        WorkItemEvidenceSchema,
        metadata={"description": "What raised it (answer, doses, discharge)"},
    )
    status = ma.fields.String(validate=Choice("WorkItemStatus", STATUSES))
    opened_at = Instant()
    evidence_at = Instant(metadata={"description": "The newest evidence behind the item"})
    updated_at = Instant()
    assigned_to = ma.fields.Nested(PersonSchema, allow_none=True)
    acknowledged_by = ma.fields.Nested(PersonSchema, allow_none=True)
    acknowledged_at = Instant(allow_none=True)
    resolved_by = ma.fields.Nested(PersonSchema, allow_none=True)
    resolved_at = Instant(allow_none=True)
    resolution_note = ma.fields.String(allow_none=True)


class WorkItemEventSchema(ma.Schema):
    action = ma.fields.String(validate=Choice("WorkItemAction", EVENT_ACTIONS))
    by = ma.fields.Nested(PersonSchema, allow_none=True, metadata={"description": "None: system"})
    note = ma.fields.String(allow_none=True)
    detail = ma.fields.Nested(WorkItemEventDetailSchema)
    at = Instant()


class WorkItemDetailSchema(WorkItemSchema):
    events = ma.fields.List(ma.fields.Nested(WorkItemEventSchema))


class AssignSchema(BaseSchema):
    user_id = RecordId(required=True, metadata={"description": "A member of the patient's team"})


class ResolveSchema(BaseSchema):
    note = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=NOTE_MAX),
        metadata={"example": "Called María; she had run out. Refill ordered."},
    )

    @ma.validates("note")
    def _not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ma.ValidationError("Say what was done.")


def _people(ids: set[int | None]) -> dict[int, dict[str, Any]]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = db.session.scalars(select(User).where(User.id.in_(wanted)))
    return {u.id: {"id": u.id, "name": u.name} for u in users}


def _views(items: list[WorkItem]) -> list[dict[str, Any]]:
    """Items with their patient and people, in two queries for the whole page."""
    patients = (
        {
            p.id: {"id": p.id, "name": p.display_name}
            for p in db.session.scalars(
                select(Patient).where(Patient.id.in_({i.patient_id for i in items}))
            )
        }
        if items
        else {}
    )
    people = _people(
        {i.assigned_to_user_id for i in items}
        | {i.acknowledged_by_user_id for i in items}
        | {i.resolved_by_user_id for i in items}
    )
    views = []
    for item in items:
        view = {c: getattr(item, c) for c in WorkItemSchema._declared_fields if hasattr(item, c)}
        view["patient"] = patients.get(item.patient_id)
        view["assigned_to"] = people.get(item.assigned_to_user_id or 0)
        view["acknowledged_by"] = people.get(item.acknowledged_by_user_id or 0)
        view["resolved_by"] = people.get(item.resolved_by_user_id or 0)
        views.append(view)
    return views


class WorklistPage(PaginatedSelect):
    @property
    def items(self) -> list[Any]:
        found = list(db.session.scalars(self.paged()))
        views = _views(found)
        user = current_user()
        record_panel_access(user.id, sorted({i.patient_id for i in found}), "view_worklist")
        return views


def _item_for(item_id: int) -> WorkItem:
    """The item, if one of the user's teams has its patient; 404 otherwise."""
    user = current_user()
    item = db.session.scalar(
        select(WorkItem).where(
            WorkItem.id == item_id, WorkItem.patient_id.in_(panel_patient_ids(user.id))
        )
    )
    if item is None:
        fail(404, "No such worklist item.")
    return item


def _detail(item: WorkItem) -> dict[str, Any]:
    (view,) = _views([item])
    events = list(
        db.session.scalars(
            select(WorkItemEvent)
            .where(WorkItemEvent.work_item_id == item.id)
            .order_by(WorkItemEvent.at, WorkItemEvent.id)
        )
    )
    people = _people({e.user_id for e in events})
    view["events"] = [
        {
            "action": e.action,
            "by": people.get(e.user_id or 0),
            "note": e.note,
            "detail": e.detail,
            "at": e.at,
        }
        for e in events
    ]
    return view


@blp.route("/worklist")
class Worklist(MethodView):
    @blp.arguments(WorklistArgs, location="query")
    @blp.response(200, WorkItemSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 404)
    def get(self, args: dict[str, Any], pagination_parameters: Any) -> Any:
        """Open items across your teams' patients: urgent first, then oldest first"""
        user = current_user()
        team_id = args.get("team_id")
        if team_id is not None and not db.session.scalar(
            my_team_ids(user.id).where(CareTeamMember.care_team_id == team_id)
        ):
            fail(404, "No such care team.")
        stmt = select(WorkItem).where(WorkItem.patient_id.in_(panel_patient_ids(user.id, team_id)))
        status = args["status"]
        if status == "unresolved":
            # Written out, not a parameter: the planner must see the partial indexes' own
            # predicate to use them (ix_work_items_unresolved_queue reads a page off in the
            # list's order; the count reads uq_work_items_unresolved_patient_key), also in the
            # generic plan of a prepared statement.
            stmt = stmt.where(WorkItem.status != literal_column("'resolved'"))
        else:
            stmt = stmt.where(WorkItem.status == status)
        if "patient_id" in args:
            stmt = stmt.where(WorkItem.patient_id == args["patient_id"])
        if "kind" in args:
            stmt = stmt.where(WorkItem.kind == args["kind"])
        if "urgent" in args:
            stmt = stmt.where(WorkItem.urgent.is_(args["urgent"]))
        if "assigned_to" in args:
            who = user.id if args["assigned_to"] == "me" else int(args["assigned_to"])
            stmt = stmt.where(WorkItem.assigned_to_user_id == who)
        stmt = stmt.order_by(WorkItem.urgent.desc(), WorkItem.opened_at, WorkItem.id)
        return WorklistPage(stmt, pagination_parameters).items


@blp.route("/worklist/<int:item_id>")
class WorklistItem(MethodView):
    @blp.response(200, WorkItemDetailSchema)
    @error_responses(blp, 404)
    def get(self, item_id: int) -> Any:
        """One item with its trail: who opened, acknowledged, assigned and resolved it"""
        item = _item_for(item_id)
        record_panel_access(current_user().id, [item.patient_id], "view_worklist")
        return _detail(item)


def _workable(item_id: int) -> tuple[int, WorkItem]:
    """(user id, item) for an action on an unresolved item; the action is access-logged."""
    user = current_user()
    item = _item_for(item_id)
    if item.status == "resolved":
        fail(409, "This item is already resolved.")
    record_panel_access(user.id, [item.patient_id], "work_worklist")
    return user.id, item


@blp.route("/worklist/<int:item_id>/acknowledge")
class WorkItemAcknowledge(MethodView):
    @blp.response(200, WorkItemDetailSchema)
    @error_responses(blp, 404, 409)
    def post(self, item_id: int) -> Any:
        """Say you are on it: the item stays on the list as acknowledged"""
        user_id, item = _workable(item_id)
        worklist.acknowledge(db.session(), item, user_id)
        return _detail(item)


@blp.route("/worklist/<int:item_id>/assign")
class Assign(MethodView):
    @blp.arguments(AssignSchema)
    @blp.response(200, WorkItemDetailSchema)
    @error_responses(blp, 404, 409)
    def post(self, data: dict[str, Any], item_id: int) -> Any:
        """Give the item to a member of the patient's care team"""
        user_id, item = _workable(item_id)
        members = care_team_user_ids(db.session(), [item.patient_id])
        if data["user_id"] not in members.get(item.patient_id, set()):
            fail(
                422,
                "Assign to a member of the patient's care team.",
                errors={"json": {"user_id": ["Not on a care team of this patient."]}},
            )
        worklist.assign(db.session(), item, user_id, data["user_id"])
        return _detail(item)


@blp.route("/worklist/<int:item_id>/resolve")
class Resolve(MethodView):
    @blp.arguments(
        ResolveSchema, example={"note": "Called María; she had run out. Refill ordered."}
    )
    @blp.response(200, WorkItemDetailSchema)
    @error_responses(blp, 404, 409)
    def post(self, data: dict[str, Any], item_id: int) -> Any:
        """Close the item with a note of what was done"""
        user_id, item = _workable(item_id)
        if not worklist.resolve(db.session(), item, user_id, data["note"].strip()):
            fail(409, "This item is already resolved.")
        return _detail(item)
