"""Care transitions: ``/patients/{id}/discharges`` with their checklists and medication
changes, ``/patients/{id}/encounters`` (hospital admissions, ER visits, observation stays),
and the readmission report of a care team (``/care-teams/{id}/transitions-report``) or of
all your teams (``/me/transitions-report``).

Who may do what:

- record a discharge or an encounter: ``manage_transitions`` (the patient's side and the
  care team; not a grantable caregiver permission);
- see discharges, their checklist and encounters: ``view_care_plan`` (the checklist is the
  transition part of the care plan); the medication changes of a discharge are shown only
  to those who also hold ``view_medications`` (others get ``medication_changes: null``);
- apply the medication changes to the medicine list (``/reconciliation``):
  ``manage_medications`` (the patient, a managing caregiver, a caregiver granted it, and
  care-team roles that manage medicines);
- acknowledge a medication change: the patient, their managing caregiver, or a caregiver
  granted ``manage_medications`` (acknowledging happens at home; the care team gets 403);
- the report: members of the team (another team is a 404, as for every /care-teams route).

The rules (due times, what completes each task, the follow-up visit types, the report's
period) are in backend/services/transitions.py. Importing this module registers the
transition sweep rules with the worklist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import func, select

from backend import db
from backend.access import (
    Action,
    PatientAccess,
    Role,
    authorize,
    panel_patient_ids,
    record_panel_access,
    team_membership,
)
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Choice, Instant, RecordId, error_responses, trimmed
from backend.api.medications import MedicationSchema
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import Discharge, Encounter, MedicationChange
from backend.models.transition import CHANGE_KINDS, ENCOUNTER_KINDS, REPORTERS, TASK_KINDS
from backend.services import reconciliation
from backend.services import transitions as service

blp = Blueprint("transitions", __name__, description="Care transitions (hospital to home)")

# A medicine a discharge change proposes: the medication schema, every field optional.
PROPOSAL = MedicationSchema(partial=True)

MAX_CHANGES = 50
# A phone's clock a little ahead of ours still records "discharged just now".
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_REPORTER_OF_ROLE = {
    Role.SELF: "patient",
    Role.MANAGING_CAREGIVER: "caregiver",
    Role.CAREGIVER: "caregiver",
    Role.CARE_TEAM: "care_team",
}


def _past(field: str, value: datetime | None) -> None:
    if value is None:
        return
    if value > now() + CLOCK_SKEW:
        raise ma.ValidationError("Must not be in the future.", field)
    if value < EARLIEST:
        raise ma.ValidationError("Before 2000; check the year.", field)


def _text(max_len: int, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=trimmed(max_len), **kwargs)


class MedicationChangeSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    change = ma.fields.String(required=True, validate=Choice("MedicationChangeKind", CHANGE_KINDS))
    name = _text(200, required=True, metadata={"example": "Furosemide 20 mg"})
    medication_id = RecordId(
        allow_none=True,
        metadata={"description": "The patient's existing medicine this change is about"},
    )
    details = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=2000),
        metadata={"example": "One tablet every morning; weigh yourself daily."},
    )
    medication = ma.fields.Nested(
        PROPOSAL,
        allow_none=True,
        metadata={
            "description": "The medicine this change proposes, as POST /medications takes it: "
            "all of it for a new medicine (name defaults to the change's name), the fields "
            "that change for a changed one, nothing for a stopped one. Applied by "
            "POST .../reconciliation"
        },
    )
    applied_by_user_id = ma.fields.Integer(dump_only=True, allow_none=True)
    applied_at = Instant(dump_only=True, allow_none=True)
    acknowledged_by_user_id = ma.fields.Integer(dump_only=True, allow_none=True)
    acknowledged_at = Instant(dump_only=True, allow_none=True)

    @ma.validates_schema
    def _proposal(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("change") == "stopped" and data.get("medication"):
            raise ma.ValidationError("A stopped medicine proposes nothing.", "medication")

    @ma.post_load
    def _keep(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The proposal is kept as JSON on the change (a column, not a nested object)."""
        medication = data.pop("medication", None)
        if medication:
            data["proposal"] = PROPOSAL.dump(medication)
        return data


class ReconcileChangeSchema(BaseSchema):
    id = RecordId(required=True, metadata={"description": "A medication change's id"})
    medication = ma.fields.Nested(
        PROPOSAL,
        allow_none=True,
        metadata={"description": "Replaces the medicine recorded with the change, if given"},
    )


class ReconcileSchema(BaseSchema):
    dry_run = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "true: only say what each change would do; change nothing"},
    )
    changes = ma.fields.List(
        ma.fields.Nested(ReconcileChangeSchema),
        validate=ma.validate.Length(min=1, max=MAX_CHANGES),
        metadata={"description": "Which changes to apply; omitted: all of them"},
    )


class ChangeOutcomeSchema(MedicationChangeSchema):
    outcome = ma.fields.String(
        dump_only=True, validate=Choice("ReconcileOutcome", reconciliation.OUTCOMES)
    )
    effect = ma.fields.String(dump_only=True, metadata={"description": "What it does, in words"})
    problem = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Why it cannot be applied"}
    )


class ReconciliationSchema(ma.Schema):
    discharge_id = ma.fields.Integer()
    dry_run = ma.fields.Boolean()
    changes = ma.fields.List(ma.fields.Nested(ChangeOutcomeSchema))


class TaskSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(validate=Choice("TransitionTaskKind", TASK_KINDS))
    day = ma.fields.Integer(
        allow_none=True, metadata={"description": "readmission_check: day 7, 14 or 30"}
    )
    due_at = Instant()
    status = ma.fields.String(
        validate=Choice("TransitionTaskStatus", ("pending", "done", "overdue"))
    )
    done_at = Instant(allow_none=True)
    done_by_user_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String(allow_none=True)
    completed_by = ma.fields.String(metadata={"description": "What completes this task"})
    work_item_id = ma.fields.Integer(allow_none=True)
    appointment_id = ma.fields.Integer(allow_none=True)
    checkin_schedule_id = ma.fields.Integer(allow_none=True)


class DischargeSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    encounter_id = RecordId(
        allow_none=True,
        metadata={
            "description": "The hospital_admission encounter this discharge ends, if it was "
            "recorded already; otherwise one is made"
        },
    )
    facility = _text(200, required=True, metadata={"example": "Riverside General Hospital"})
    admitted_at = Instant(allow_none=True)
    discharged_at = Instant(required=True)
    reason = ma.fields.String(allow_none=True, validate=trimmed(500))
    medication_changes = ma.fields.List(
        ma.fields.Nested(MedicationChangeSchema),
        allow_none=True,
        validate=ma.validate.Length(max=MAX_CHANGES),
        metadata={"description": "null when you may not see the patient's medicines"},
    )
    tasks = ma.fields.List(ma.fields.Nested(TaskSchema), dump_only=True)
    recorded_by_user_id = ma.fields.Integer(dump_only=True)
    recorded_at = Instant(dump_only=True)

    @ma.validates_schema
    def _times(self, data: dict[str, Any], **_: Any) -> None:
        _past("discharged_at", data.get("discharged_at"))
        _past("admitted_at", data.get("admitted_at"))
        admitted, discharged = data.get("admitted_at"), data.get("discharged_at")
        if admitted is not None and discharged is not None and admitted > discharged:
            raise ma.ValidationError("Must not be after the discharge.", "admitted_at")


class EncounterSchema(BaseSchema):
    id = ma.fields.Integer(dump_only=True)
    patient_id = ma.fields.Integer(dump_only=True)
    kind = ma.fields.String(required=True, validate=Choice("EncounterKind", ENCOUNTER_KINDS))
    facility = _text(200, required=True, metadata={"example": "Riverside General ER"})
    start = Instant(required=True, attribute="start_at")
    end = Instant(allow_none=True, attribute="end_at")
    reason = ma.fields.String(allow_none=True, validate=trimmed(500))
    reported_by = ma.fields.String(
        validate=Choice("Reporter", REPORTERS),
        metadata={"description": "Who told us; default from the recorder's relation"},
    )
    discharge_id = ma.fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "The discharge that ended it"}
    )
    recorded_by_user_id = ma.fields.Integer(dump_only=True)
    recorded_at = Instant(dump_only=True)

    @ma.validates_schema
    def _times(self, data: dict[str, Any], **_: Any) -> None:
        _past("start", data.get("start_at"))
        _past("end", data.get("end_at"))
        start, end = data.get("start_at"), data.get("end_at")
        if start is not None and end is not None and end < start:
            raise ma.ValidationError("Must not be before the start.", "end")


class ReportArgs(BaseSchema):
    days = ma.fields.Integer(
        load_default=90,
        validate=ma.validate.Range(min=1, max=366),
        metadata={"description": "Index discharges of the last N days (default 90)"},
    )


class ReportEncounterSchema(ma.Schema):
    encounter_id = ma.fields.Integer()
    facility = ma.fields.String()
    start = Instant()


class ReportLineSchema(ma.Schema):
    patient_id = ma.fields.Integer()
    patient_name = ma.fields.String()
    discharge_id = ma.fields.Integer()
    facility = ma.fields.String()
    discharged_at = Instant()
    window_ends_at = Instant()
    window_open = ma.fields.Boolean(
        metadata={"description": "The 30 days are not over: the counts can still grow"}
    )
    readmissions = ma.fields.List(ma.fields.Nested(ReportEncounterSchema))
    er_visits = ma.fields.List(ma.fields.Nested(ReportEncounterSchema))


class RateSchema(ma.Schema):
    numerator = ma.fields.Integer()
    denominator = ma.fields.Integer(metadata={"description": "Index discharges"})
    rate = ma.fields.Float(allow_none=True, metadata={"description": "null with no discharges"})


class ReportSchema(ma.Schema):
    team_id = ma.fields.Integer(allow_none=True)
    days = ma.fields.Integer()
    from_ = Instant(data_key="from", attribute="from")
    to = Instant()
    window_days = ma.fields.Integer()
    index_discharges = ma.fields.Integer()
    open_windows = ma.fields.Integer()
    readmission = ma.fields.Nested(
        RateSchema, metadata={"description": "Hospital admission within 30 days of discharge"}
    )
    er_visit = ma.fields.Nested(
        RateSchema, metadata={"description": "ER visit within 30 days of discharge"}
    )
    discharges = ma.fields.List(ma.fields.Nested(ReportLineSchema))


def _reporter(access: PatientAccess) -> str:
    return _REPORTER_OF_ROLE[access.role]


def _discharge(patient_id: int, discharge_id: int) -> Discharge:
    found = db.session.get(Discharge, discharge_id)
    if found is None or found.patient_id != patient_id:
        fail(404, "No such discharge.")
    return found


def _change_view(c: MedicationChange) -> dict[str, Any]:
    return {
        "id": c.id,
        "change": c.change,
        "name": c.name,
        "medication_id": c.medication_id,
        "details": c.details,
        "medication": _load_proposal(c.proposal) if c.proposal else None,
        "applied_by_user_id": c.applied_by_user_id,
        "applied_at": c.applied_at,
        "acknowledged_by_user_id": c.acknowledged_by_user_id,
        "acknowledged_at": c.acknowledged_at,
    }


def _load_proposal(kept: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = PROPOSAL.load(kept)
    return loaded


def _views(discharges: list[Discharge], access: PatientAccess) -> list[dict[str, Any]]:
    """Discharges with their checklists, and their changes for those who see medicines."""
    session = db.session()
    tasks = service.checklist(session, discharges, now())
    changes: dict[int, list[dict[str, Any]]] = {d.id: [] for d in discharges}
    if access.allows(Action.VIEW_MEDICATIONS) and discharges:
        for c in session.scalars(
            select(MedicationChange)
            .where(MedicationChange.discharge_id.in_(changes))
            .order_by(MedicationChange.id)
        ):
            changes[c.discharge_id].append(_change_view(c))
    shows_medicines = access.allows(Action.VIEW_MEDICATIONS)
    return [
        {
            "id": d.id,
            "patient_id": d.patient_id,
            "encounter_id": d.encounter_id,
            "facility": d.facility,
            "admitted_at": d.admitted_at,
            "discharged_at": d.discharged_at,
            "reason": d.reason,
            "medication_changes": changes[d.id] if shows_medicines else None,
            "tasks": tasks[d.id],
            "recorded_by_user_id": d.recorded_by_user_id,
            "recorded_at": d.recorded_at,
        }
        for d in discharges
    ]


def _page(stmt: Any, pagination_parameters: Any) -> list[Any]:
    count = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    pagination_parameters.item_count = int(count or 0)
    first = pagination_parameters.first_item
    if first >= pagination_parameters.item_count:
        return []
    return list(db.session.execute(stmt.offset(first).limit(pagination_parameters.page_size)))


@blp.route("/patients/<int:patient_id>/discharges")
class Discharges(MethodView):
    @blp.response(200, DischargeSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, pagination_parameters: Any) -> list[dict[str, Any]]:
        """The patient's discharges with their checklists, newest first"""
        access = authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        stmt = (
            select(Discharge)
            .where(Discharge.patient_id == patient_id)
            .order_by(Discharge.discharged_at.desc(), Discharge.id.desc())
        )
        return _views([row[0] for row in _page(stmt, pagination_parameters)], access)

    @blp.arguments(DischargeSchema)
    @blp.response(201, DischargeSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Record a discharge: its medication changes and its transition checklist"""
        access = authorize(current_user(), patient_id, Action.MANAGE_TRANSITIONS)
        discharge = service.record_discharge(
            db.session(), access.patient, access.user, _reporter(access), data
        )
        (view,) = _views([discharge], access)
        return view


@blp.route("/patients/<int:patient_id>/discharges/<int:discharge_id>")
class DischargeById(MethodView):
    @blp.response(200, DischargeSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, discharge_id: int) -> dict[str, Any]:
        """One discharge with its checklist: each task's due time, status and what completes it"""
        access = authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        (view,) = _views([_discharge(patient_id, discharge_id)], access)
        return view


@blp.route(
    "/patients/<int:patient_id>/discharges/<int:discharge_id>"
    "/medication-changes/<int:change_id>/acknowledge"
)
class AcknowledgeChange(MethodView):
    @blp.response(200, MedicationChangeSchema)
    @error_responses(blp, 403, 404)
    def post(self, patient_id: int, discharge_id: int, change_id: int) -> dict[str, Any]:
        """Acknowledge a medication change at home (the last one completes reconciliation)"""
        access = authorize(current_user(), patient_id, Action.MANAGE_MEDICATIONS)
        if access.role is Role.CARE_TEAM:
            fail(403, "Medication changes are acknowledged by the patient or their caregiver.")
        _discharge(patient_id, discharge_id)
        change = db.session.get(MedicationChange, change_id)
        if change is None or change.discharge_id != discharge_id:
            fail(404, "No such medication change.")
        return _change_view(service.acknowledge_change(db.session(), change, access.user))


@blp.route("/patients/<int:patient_id>/discharges/<int:discharge_id>/reconciliation")
class Reconciliation(MethodView):
    @blp.arguments(ReconcileSchema)
    @blp.response(200, ReconciliationSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int, discharge_id: int) -> dict[str, Any]:
        """Apply the discharge's medication changes to the medicine list (dry_run: only say
        what each would do); all or nothing"""
        access = authorize(current_user(), patient_id, Action.MANAGE_MEDICATIONS)
        discharge = _discharge(patient_id, discharge_id)
        given = {
            c["id"]: (
                reconciliation.Proposal(c["medication"], PROPOSAL.dump(c["medication"]))
                if c.get("medication")
                else None
            )
            for c in data.get("changes") or []
        }
        outcomes = reconciliation.reconcile(
            db.session(),
            access.patient,
            discharge,
            access.user,
            given,
            data["dry_run"],
            _load_proposal,
        )
        return {
            "discharge_id": discharge.id,
            "dry_run": data["dry_run"],
            "changes": [
                {
                    **_change_view(o.change),
                    "outcome": o.outcome,
                    "effect": o.effect,
                    "problem": o.problem,
                }
                for o in outcomes
            ],
        }


def _encounter_view(e: Encounter, discharge_id: int | None) -> dict[str, Any]:
    return {
        "id": e.id,
        "patient_id": e.patient_id,
        "kind": e.kind,
        "facility": e.facility,
        "start_at": e.start_at,
        "end_at": e.end_at,
        "reason": e.reason,
        "reported_by": e.reported_by,
        "discharge_id": discharge_id,
        "recorded_by_user_id": e.recorded_by_user_id,
        "recorded_at": e.recorded_at,
    }


@blp.route("/patients/<int:patient_id>/encounters")
class Encounters(MethodView):
    @blp.response(200, EncounterSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, pagination_parameters: Any) -> list[dict[str, Any]]:
        """The patient's hospital admissions, ER visits and observation stays, newest first"""
        authorize(current_user(), patient_id, Action.VIEW_CARE_PLAN)
        stmt = (
            select(Encounter, Discharge.id)
            .outerjoin(Discharge, Discharge.encounter_id == Encounter.id)
            .where(Encounter.patient_id == patient_id)
            .order_by(Encounter.start_at.desc(), Encounter.id.desc())
        )
        return [_encounter_view(e, d) for e, d in _page(stmt, pagination_parameters)]

    @blp.arguments(EncounterSchema)
    @blp.response(201, EncounterSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Record a hospital admission, ER visit or observation stay"""
        access = authorize(current_user(), patient_id, Action.MANAGE_TRANSITIONS)
        encounter = service.record_encounter(
            db.session(), access.patient, access.user, _reporter(access), data
        )
        return _encounter_view(encounter, None)


def _report(patient_ids: list[int], days: int) -> dict[str, Any]:
    """The report; the patients it names are in their access logs, as for the worklist."""
    result = service.report(db.session(), patient_ids, now(), days)
    shown = sorted({line["patient_id"] for line in result["discharges"]})
    record_panel_access(current_user().id, shown, "view_transitions_report")
    return result


@blp.route("/care-teams/<int:team_id>/transitions-report")
class TeamTransitionsReport(MethodView):
    @blp.arguments(ReportArgs, location="query")
    @blp.response(200, ReportSchema)
    @error_responses(blp, 404)
    def get(self, args: dict[str, Any], team_id: int) -> dict[str, Any]:
        """30-day readmission and ER-visit rates after discharge, for one of your teams"""
        if team_membership(current_user(), team_id) is None:
            fail(404, "No such care team.")
        patient_ids = list(db.session.scalars(panel_patient_ids(current_user().id, team_id)))
        result = _report(patient_ids, args["days"])
        return {"team_id": team_id, **result}


@blp.route("/me/transitions-report")
class MyTransitionsReport(MethodView):
    @blp.arguments(ReportArgs, location="query")
    @blp.response(200, ReportSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """30-day readmission and ER-visit rates after discharge, over all your teams"""
        patient_ids = set(db.session.scalars(panel_patient_ids(current_user().id)))
        result = _report(sorted(patient_ids), args["days"])
        return {"team_id": None, **result}
