"""Adherence: per patient and medicine, and a care team's panel summary (worst first).

Definitions (settled doses, late counted as taken and apart, the day-level PDC that is not
the pharmacy-claims PDC, PRN excluded) are in backend/services/adherence.py.

A patient's own adherence is always computed at the request. The panel reads each patient's
snapshot (``backend/services/adherence_snapshots``) when it is fresh, computes the others in
one call and stores them; every row says when its numbers were computed (``computed_at``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import Action, authorize, record_panel_access, team_membership
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Choice, Instant, error_responses
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import Enrollment, Patient
from backend.services import adherence_snapshots
from backend.services.adherence import (
    MAX_WEEKS,
    PERIODS,
    PatientAdherence,
    Tally,
    WeeklyAdherence,
    adherence,
    weekly,
)
from backend.services.panel import panel_tallies

blp = Blueprint("adherence", __name__, description="Medication adherence")


class PeriodArgs(BaseSchema):
    days = ma.fields.Integer(
        load_default=30,
        validate=Choice("AdherencePeriod", PERIODS),
        metadata={"description": "The last 7, 30 or 90 local days, today included"},
    )


class TallySchema(ma.Schema):
    scheduled = ma.fields.Integer(
        metadata={"description": "Due doses that are logged or past the 4 h missed mark"}
    )
    taken = ma.fields.Integer()
    late = ma.fields.Integer(metadata={"description": "Of taken, how many were late"})
    skipped = ma.fields.Integer()
    missed = ma.fields.Integer()
    pending = ma.fields.Integer(metadata={"description": "Due, not logged, not yet missed"})
    days_with_doses = ma.fields.Integer()
    days_covered = ma.fields.Integer()
    dose_adherence = ma.fields.Float(allow_none=True, metadata={"description": "taken / scheduled"})
    pdc = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "Day-level proportion of days covered (not the claims PDC): days "
            "with every scheduled dose taken / days with a scheduled dose"
        },
    )


class MedicationAdherenceSchema(TallySchema):
    medication_id = ma.fields.Integer()
    name = ma.fields.String()
    strength = ma.fields.String(allow_none=True)


class PatientAdherenceSchema(ma.Schema):
    patient_id = ma.fields.Integer()
    days = ma.fields.Integer()
    start = Instant()
    end = Instant()
    overall = ma.fields.Nested(TallySchema)
    medications = ma.fields.List(ma.fields.Nested(MedicationAdherenceSchema))


class WeeksArgs(BaseSchema):
    weeks = ma.fields.Integer(
        load_default=12,
        validate=ma.validate.Range(min=1, max=MAX_WEEKS),
        metadata={"description": "How many local calendar weeks, this one so far included"},
    )


class WeekSchema(TallySchema):
    week_start = ma.fields.Date(metadata={"description": "The local Monday the week starts on"})


class MedicationWeeksSchema(ma.Schema):
    medication_id = ma.fields.Integer()
    name = ma.fields.String()
    strength = ma.fields.String(allow_none=True)
    weeks = ma.fields.List(ma.fields.Nested(WeekSchema))


class WeeklyAdherenceSchema(ma.Schema):
    patient_id = ma.fields.Integer()
    weeks = ma.fields.Integer()
    start = Instant(metadata={"description": "Midnight starting the first week, local"})
    end = Instant()
    overall = ma.fields.List(
        ma.fields.Nested(WeekSchema), metadata={"description": "Oldest week first"}
    )
    medications = ma.fields.List(ma.fields.Nested(MedicationWeeksSchema))


class PanelAdherenceSchema(TallySchema):
    patient_id = ma.fields.Integer()
    display_name = ma.fields.String()
    computed_at = Instant(
        metadata={
            "description": "When these numbers were computed (their window ends then): the "
            "request's instant, or up to "
            f"{adherence_snapshots.FRESH_FOR.seconds // 60} minutes before it for a stored "
            "snapshot (the worklist sweep's, or an earlier request's)"
        }
    )


def _med_view(tally: Tally, med: Any) -> dict[str, Any]:
    return {"medication_id": med.id, "name": med.name, "strength": med.strength, **tally.as_dict()}


def _patient_view(result: PatientAdherence, days: int) -> dict[str, Any]:
    return {
        "patient_id": result.patient.id,
        "days": days,
        "start": result.start,
        "end": result.end,
        "overall": result.overall.as_dict(),
        "medications": [_med_view(t, m) for m, t in result.medications],
    }


def _worst_first(row: dict[str, Any]) -> tuple[Any, ...]:
    # nothing to measure sorts last; then lowest adherence, lowest PDC, most missed
    dose, pdc = row["dose_adherence"], row["pdc"]
    return (dose is None, dose or 0.0, pdc or 0.0, -row["missed"], row["display_name"], row["id"])


@blp.route("/patients/<int:patient_id>/adherence")
class PatientAdherenceView(MethodView):
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, PatientAdherenceSchema)
    @error_responses(blp, 403, 404)
    def get(self, args: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Dose adherence and day-level PDC, per medicine and overall"""
        access = authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        days: int = args["days"]
        (result,) = adherence(db.session(), [access.patient], days, now())
        return _patient_view(result, days)


def _weeks_view(found: WeeklyAdherence, weeks: dict[date, Tally]) -> list[dict[str, Any]]:
    return [{"week_start": m, **t.as_dict()} for m, t in found.series(weeks)]


@blp.route("/patients/<int:patient_id>/adherence/weekly")
class WeeklyAdherenceView(MethodView):
    @blp.arguments(WeeksArgs, location="query")
    @blp.response(200, WeeklyAdherenceSchema)
    @error_responses(blp, 403, 404)
    def get(self, args: dict[str, Any], patient_id: int) -> dict[str, Any]:
        """Adherence week by week (default the last 12), overall and per medicine, for a chart"""
        access = authorize(current_user(), patient_id, Action.VIEW_MEDICATIONS)
        found = weekly(db.session(), access.patient, args["weeks"], now())
        result = found.result
        return {
            "patient_id": result.patient.id,
            "weeks": args["weeks"],
            "start": result.start,
            "end": result.end,
            "overall": _weeks_view(found, result.weeks),
            "medications": [
                {
                    "medication_id": med.id,
                    "name": med.name,
                    "strength": med.strength,
                    "weeks": _weeks_view(found, result.medication_weeks.get(med.id, {})),
                }
                for med, _ in result.medications
            ],
        }


@blp.route("/care-teams/<int:team_id>/adherence")
class PanelAdherence(MethodView):
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, PanelAdherenceSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 404)
    def get(
        self, args: dict[str, Any], team_id: int, pagination_parameters: Any
    ) -> list[dict[str, Any]]:
        """Adherence of each patient on one of your teams, worst first"""
        if team_membership(current_user(), team_id) is None:
            fail(404, "No such care team.")
        days: int = args["days"]
        at = now()
        names = {
            pid: name
            for pid, name in db.session.execute(
                select(Patient.id, Patient.display_name)
                .join(Enrollment, Enrollment.patient_id == Patient.id)
                .where(Enrollment.care_team_id == team_id, Enrollment.active_clause())
            )
        }
        tallies = panel_tallies(db.session(), team_id, list(names), days, at)
        rows = {
            pid: {"id": pid, "patient_id": pid, "display_name": names[pid], **tally}
            for pid, tally in tallies.items()
        }
        ordered = sorted(rows.values(), key=_worst_first)
        pagination_parameters.item_count = len(ordered)
        first = pagination_parameters.first_item
        page = ordered[first : first + pagination_parameters.page_size]
        record_panel_access(current_user().id, [r["patient_id"] for r in page], "view_adherence")
        return page
