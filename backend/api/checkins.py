"""Check-ins: the built-in screeners (``/checkin-templates``) and a patient's answers
(``/patients/{id}/checkin-responses``), validated against the template and scored."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from backend import db
from backend.access import Action, Role, authorize
from backend.api.common import BaseSchema, Instant, PaginatedSelect, error_responses
from backend.auth import current_user
from backend.checkins.crisis import crisis_guidance
from backend.checkins.instruments import SAFETY, AnswerError, builtins, score
from backend.clock import now
from backend.errors import fail
from backend.models import CheckinResponse

blp = Blueprint("checkins", __name__, description="Check-ins and standard screeners")

MAX_ANSWERS = 100


class AnswerOptionSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "LA6569-3"})
    display = ma.fields.String(metadata={"example": "Several days"})
    value = ma.fields.Integer(metadata={"example": 1})


class TemplateItemSchema(ma.Schema):
    code = ma.fields.String(
        attribute="loinc", metadata={"description": "LOINC code", "example": "44250-9"}
    )
    text = ma.fields.String()
    type = ma.fields.Constant("choice")
    required = ma.fields.Constant(True)
    answers = ma.fields.List(ma.fields.Nested(AnswerOptionSchema))


class TemplateSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "PHQ-9"})
    title = ma.fields.String()
    loinc = ma.fields.String(metadata={"description": "LOINC panel code", "example": "44249-1"})
    builtin = ma.fields.Constant(True)
    caregiver_may_answer = ma.fields.Boolean()
    max_score = ma.fields.Integer(attribute="max_total")
    items = ma.fields.List(ma.fields.Nested(TemplateItemSchema))


def _answer_value(value: Any) -> Any:
    # An answer is a LOINC answer code ("LA6569-3") or its score (1); the template decides.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ma.ValidationError("An answer code (e.g. 'LA6569-3') or its number.")
    return value


class CheckinAnswersSchema(BaseSchema):
    template = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "Template code, e.g. PHQ-9", "example": "PHQ-2"},
    )
    answers = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=ma.fields.Raw(validate=_answer_value),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_ANSWERS),
        metadata={
            "description": "Item LOINC code -> LOINC answer code or its number",
            "example": {"44250-9": "LA6569-3", "44255-8": 2},
        },
    )


class CheckinResponseSchema(ma.Schema):
    id = ma.fields.Integer()
    patient_id = ma.fields.Integer()
    template = ma.fields.String(attribute="template_code", metadata={"example": "PHQ-2"})
    answers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Item LOINC code -> LOINC answer code"},
    )
    score = ma.fields.Integer(allow_none=True)
    band = ma.fields.String(allow_none=True, metadata={"example": "mild"})
    flags = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "safety (PHQ-9 item 9 above 0), positive_screen (PHQ-2 >= 3)"},
    )
    answered_by_user_id = ma.fields.Integer()
    on_behalf = ma.fields.Boolean(
        metadata={"description": "Entered by someone other than the patient"}
    )
    at = Instant()
    crisis_guidance = ma.fields.String(
        metadata={"description": "With a safety flag: what to do now, in the patient's language"}
    )


@blp.route("/checkin-templates")
class CheckinTemplates(MethodView):
    @blp.response(200, TemplateSchema(many=True))
    def get(self) -> Any:
        """The check-in templates: the built-in PHQ-2, PHQ-9 and GAD-7"""
        current_user()
        return list(builtins().values())


@blp.route("/patients/<int:patient_id>/checkin-responses")
class CheckinResponses(MethodView):
    @blp.response(200, CheckinResponseSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, pagination_parameters: Any) -> Any:
        """The patient's answered check-ins, newest first"""
        authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        stmt = (
            select(CheckinResponse)
            .where(CheckinResponse.patient_id == patient_id)
            .order_by(CheckinResponse.at.desc(), CheckinResponse.id.desc())
        )
        return PaginatedSelect(stmt, pagination_parameters).items

    @blp.arguments(CheckinAnswersSchema)
    @blp.response(201, CheckinResponseSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Answer a check-in: validated against the template and scored.

        The patient answers; a care-team member may record answers given by phone. A
        caregiver may answer on the patient's behalf only where the template allows it (the
        standard screeners do not). Incomplete screeners are refused, naming the missing items.
        """
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        instrument = builtins().get(data["template"])
        if instrument is None:
            fail(
                422,
                "No such check-in template.",
                errors={"json": {"template": [f"One of {', '.join(builtins())}."]}},
            )
        caregiver = access.role in (Role.CAREGIVER, Role.MANAGING_CAREGIVER)
        if caregiver and not instrument.caregiver_may_answer:
            fail(403, f"{instrument.code} is answered by the patient, not on their behalf.")
        answers = data["answers"]
        try:
            result = score(instrument, answers)
        except AnswerError as exc:
            fail(
                422,
                "Some answers do not fit the template.",
                errors={"json": {"answers": {k: [v] for k, v in exc.errors.items()}}},
            )
        if not result.complete:
            fail(
                422,
                f"{instrument.code} needs every item answered.",
                errors={"json": {"answers": {k: ["Missing."] for k in result.missing}}},
            )
        stored = {}
        for key, answer in answers.items():
            item = instrument.item(key)
            assert item is not None
            value = item.value_of(answer)
            assert value is not None
            stored[key] = item.code_of(value)
        response = CheckinResponse(
            patient_id=patient_id,
            template_code=instrument.code,
            answers=stored,
            score=result.total,
            band=result.band,
            flags=list(result.flags),
            answered_by_user_id=access.user.id,
            on_behalf=access.role != Role.SELF,
            at=now(),
        )
        db.session.add(response)
        db.session.flush()
        if SAFETY in result.flags:
            response.crisis_guidance = crisis_guidance(access.patient.language)  # type: ignore[attr-defined]
        return response
