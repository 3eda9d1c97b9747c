"""Check-ins: templates (``/checkin-templates``: built-in and the organization's own), a
patient's answers (``/patients/{id}/checkin-responses``: validated against the template,
scored, checked against the flag rules, kept as history, exported as FHIR) and the care
team's flag rules for one patient (``/patients/{id}/flag-rules``)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.access import (
    Action,
    PatientAccess,
    authorize,
    patients_cared_for,
)
from backend.api.blueprint import Blueprint
from backend.api.checkin_schemas import (
    CheckinAnswersSchema,
    CheckinResponseSchema,
    FlagRuleCreateSchema,
    FlagRuleSchema,
    QuestionnaireResponseSchema,
    TemplateCreateSchema,
    TemplateSchema,
)
from backend.api.common import BaseSchema, PaginatedSelect, RecordId, error_responses
from backend.auth import current_user
from backend.checkins import rules as flag_rules
from backend.checkins.catalog import builtin_templates
from backend.checkins.fhir import questionnaire_response
from backend.checkins.instruments import SAFETY
from backend.checkins.templates import AnswerError, Template, TemplateError, parse_template
from backend.clock import now
from backend.errors import fail
from backend.models import CarePlan, CheckinResponse, CheckinTemplate, User
from backend.models.checkin import PatientFlagRule
from backend.services.checkins import (
    author_role,
    crisis_text,
    find_template,
    hidden_from_caregivers,
    member_organization_ids,
    patient_organization_ids,
    record_answer,
    shown_to_caregivers,
    template_at,
    template_for_patient,
    visible_templates,
)

blp = Blueprint("checkins", __name__, description="Check-ins, templates and flag rules")
FHIR_JSON = "application/fhir+json"


def _user_organization_ids(user: User) -> list[int]:
    """Organizations whose templates the user sees: the ones they work for, and the ones
    the patients they are or care for are enrolled with."""
    patient_ids = [access.patient.id for access in patients_cared_for(user)]
    found = member_organization_ids(db.session(), user.id)
    if patient_ids:
        found.extend(patient_organization_ids(db.session(), *patient_ids))
    return found


@blp.route("/checkin-templates")
class CheckinTemplates(MethodView):
    @blp.response(200, TemplateSchema(many=True))
    def get(self) -> Any:
        """The check-in templates you may see, in your language where they have it"""
        user = current_user()
        found = visible_templates(db.session(), _user_organization_ids(user))
        return [t.in_language(user.language) for t in found]

    @blp.arguments(TemplateCreateSchema)
    @blp.response(201, TemplateSchema)
    @error_responses(blp, 403, 409)
    def post(self, data: dict[str, Any]) -> Any:
        """Make a check-in template for your organization (care team members)

        Templates are never edited once made, so every stored answer keeps its meaning:
        make a new one (a new code) instead.
        """
        user = current_user()
        organizations = member_organization_ids(db.session(), user.id)
        if not organizations:
            fail(403, "Only care team members make check-in templates.")
        organization_id = data.pop("organization_id", None)
        if organization_id is None and len(organizations) == 1:
            organization_id = organizations[0]
        if organization_id not in organizations:
            fail(
                422,
                "Choose one of your organizations.",
                errors={"json": {"organization_id": [f"One of {organizations}."]}},
            )
        code = data["code"]
        if code in builtin_templates():
            fail(409, f"{code} is a built-in template's code; choose another code.")
        # Only the organization's own codes are asked about: another's say nothing here.
        taken = db.session.scalar(
            select(CheckinTemplate.id).where(
                CheckinTemplate.organization_id == organization_id, CheckinTemplate.code == code
            )
        )
        if taken:
            fail(409, f"Your organization has a template with code {code}; choose another code.")
        if data.get("caregiver_may_answer") and data.get("hidden_from_caregivers"):
            fail(
                422,
                "A caregiver cannot answer what caregivers may not see.",
                errors={"json": {"hidden_from_caregivers": ["Not with caregiver_may_answer."]}},
            )
        template = _parse_definition(data)
        row = CheckinTemplate(
            code=code,
            title=data["title"],
            organization_id=organization_id,
            items=data["items"],
            flag_rules=[r.as_json() for r in flag_rules.template_rules(template)],
            caregiver_may_answer=data.get("caregiver_may_answer", False),
            hidden_from_caregivers=data.get("hidden_from_caregivers", False),
            language=template.language,
            translations=template.translations,
            created_by_user_id=user.id,
            created_at=now(),
        )
        db.session.add(row)
        db.session.flush()
        made = parse_template(row.definition(), organization_id=organization_id)
        return made.in_language(user.language)


def _parse_definition(data: dict[str, Any]) -> Template:
    """The template and its rules checked together; 422 naming each problem."""
    try:
        template = parse_template({**data, "flag_rules": []})
    except TemplateError as exc:
        fail(422, "The template does not hold together; see errors.", errors={"json": exc.errors})
    errors: dict[str, Any] = {}
    names: set[str] = set()
    for index, raw in enumerate(data.get("flag_rules") or []):
        try:
            rule = flag_rules.parse_rule(template, raw)
        except flag_rules.RuleError as exc:
            errors[str(index)] = exc.errors
            continue
        if rule.name in names:
            errors[str(index)] = {"name": ["Another rule has this name."]}
        names.add(rule.name)
    if errors:
        fail(
            422, "Some flag rules do not fit the template.", errors={"json": {"flag_rules": errors}}
        )
    return parse_template(data)


class TemplateOwner(BaseSchema):
    organization_id = RecordId(
        metadata={"description": "Whose template, where two of your organizations have this code"}
    )


@blp.route("/checkin-templates/<code>")
class CheckinTemplateOne(MethodView):
    @blp.arguments(TemplateOwner, location="query")
    @blp.response(200, TemplateSchema)
    @error_responses(blp, 404)
    def get(self, query: dict[str, Any], code: str) -> Any:
        """One check-in template, by code, in your language where it has it"""
        user = current_user()
        template = find_template(
            db.session(),
            code,
            _user_organization_ids(user),
            organization_id=query.get("organization_id"),
            field="organization_id",
        )
        if template is None:
            fail(404, "No such check-in template.")
        return template.in_language(user.language)


def _with_guidance(response: CheckinResponse, access: PatientAccess) -> CheckinResponse:
    if SAFETY in response.flags:
        response.crisis_guidance = crisis_text(db.session(), access.patient)  # type: ignore[attr-defined]
    return response


@blp.route("/patients/<int:patient_id>/checkin-responses")
class CheckinResponses(MethodView):
    @blp.response(200, CheckinResponseSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, pagination_parameters: Any) -> Any:
        """The patient's answered check-ins, newest first

        Caregivers do not see the answers to templates kept from them (SOCIAL-NEEDS).
        """
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        stmt = (
            select(CheckinResponse)
            .where(CheckinResponse.patient_id == patient_id)
            .order_by(CheckinResponse.at.desc(), CheckinResponse.id.desc())
        )
        if access.is_caregiver:
            stmt = stmt.where(shown_to_caregivers(CheckinResponse))
        return PaginatedSelect(stmt, pagination_parameters).items

    @blp.arguments(
        CheckinAnswersSchema,
        example={"template": "PHQ-2", "answers": {"44250-9": "LA6569-3", "44255-8": 0}},
    )
    @blp.response(201, CheckinResponseSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Answer a check-in: validated against the template, scored, checked for flags.

        The patient answers; a care-team member may record answers given by phone. A
        caregiver may answer on the patient's behalf only where the template allows it (the
        standard screeners and the social-needs screener do not). A bad answer is a 422
        naming the item, and nothing is stored. Flag rules that fire open worklist items
        (listed in ``raised``); a safety flag adds crisis guidance in the patient's language.
        """
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        template = _patient_template(patient_id, data)
        if access.is_caregiver and not template.caregiver_may_answer:
            fail(403, f"{template.code} is answered by the patient, not on their behalf.")
        try:
            answers = template.check_answers(data["answers"])
        except AnswerError as exc:
            message = (
                f"{template.code} needs every required item answered."
                if exc.only_missing
                else "Some answers do not fit the template."
            )
            answer_errors = {k: [v] for k, v in exc.errors.items()}
            fail(422, message, errors={"json": {"answers": answer_errors}})
        response = record_answer(
            db.session(),
            patient=access.patient,
            template=template,
            answers=answers,
            user_id=access.user.id,
            answered_as=access.role.value,
            at=now(),
        )
        return _with_guidance(response, access)


def _patient_template(patient_id: int, data: dict[str, Any]) -> Template:
    """The template a body names (``template``, ``template_organization_id``) among those the
    patient answers; 422 naming ``template`` when there is none."""
    template = template_for_patient(
        db.session(), patient_id, data["template"], data.get("template_organization_id")
    )
    if template is None:
        fail(
            422,
            "No such check-in template.",
            errors={"json": {"template": ["Not a template this patient answers."]}},
        )
    return template


def _response(patient_id: int, response_id: int) -> tuple[PatientAccess, CheckinResponse]:
    access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
    response = db.session.get(CheckinResponse, response_id)
    if response is None or response.patient_id != patient_id:
        fail(404, "No such check-in response.")
    key = response.template_key
    if access.is_caregiver and key in hidden_from_caregivers(db.session(), [key]):
        fail(404, "No such check-in response.")
    return access, response


@blp.route("/patients/<int:patient_id>/checkin-responses/<int:response_id>")
class CheckinResponseOne(MethodView):
    @blp.response(200, CheckinResponseSchema)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, response_id: int) -> Any:
        """One answered check-in"""
        access, response = _response(patient_id, response_id)
        return _with_guidance(response, access)


@blp.route("/patients/<int:patient_id>/checkin-responses/<int:response_id>/fhir")
class CheckinResponseFhir(MethodView):
    @blp.response(
        200,
        QuestionnaireResponseSchema,
        content_type=FHIR_JSON,
        description="A FHIR R4 QuestionnaireResponse (http://hl7.org/fhir/R4/questionnaireresponse.html)",
    )
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, response_id: int) -> Any:
        """One answered check-in as a FHIR R4 QuestionnaireResponse"""
        _, response = _response(patient_id, response_id)
        template = template_at(db.session(), response.template_key)
        if template is None:
            fail(404, "No such check-in response.")
        author = db.session.get(User, response.answered_by_user_id)
        resource = questionnaire_response(
            template,
            response,
            author_name=None if author is None else author.display_name,
            author_role=author_role(response),
        )
        return Response(json.dumps(resource, ensure_ascii=False), mimetype=FHIR_JSON)


@blp.route("/patients/<int:patient_id>/flag-rules")
class FlagRules(MethodView):
    @blp.response(200, FlagRuleSchema(many=True))
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> Any:
        """The patient's own flag rules in force, on top of their templates' rules"""
        access = authorize(current_user(), patient_id, Action.VIEW_CHECKINS)
        stmt = (
            select(PatientFlagRule)
            .where(PatientFlagRule.patient_id == patient_id, PatientFlagRule.active.is_(True))
            .order_by(PatientFlagRule.template_code, PatientFlagRule.id)
        )
        if access.is_caregiver:
            # The rules on an answer kept from caregivers (SOCIAL-NEEDS) say what is watched.
            stmt = stmt.where(shown_to_caregivers(PatientFlagRule))
        return list(db.session.scalars(stmt))

    @blp.arguments(FlagRuleCreateSchema)
    @blp.response(201, FlagRuleSchema)
    @error_responses(blp, 403, 404, 409)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Add a flag rule for this patient, or replace the template's rule of the same name

        ``kind: off`` switches a template rule off for this patient. Rules that raise a
        safety item (PHQ-9 item 9) cannot be replaced or switched off.
        """
        access = authorize(current_user(), patient_id, Action.MANAGE_CHECKINS)
        template = _patient_template(patient_id, data)
        try:
            rule = flag_rules.parse_rule(template, data["rule"], for_patient=True)
        except flag_rules.RuleError as exc:
            fail(422, "The rule does not fit the template.", errors={"json": {"rule": exc.errors}})
        current = {r.name: r for r in flag_rules.template_rules(template)}.get(rule.name)
        if current is not None and current.locked:
            fail(
                422,
                f"{template.code} rule {rule.name} raises a safety item and stays as it is.",
                errors={"json": {"rule": {"name": ["A safety rule cannot be changed."]}}},
            )
        if rule.kind == "off" and current is None:
            fail(
                422,
                f"{template.code} has no rule {rule.name} to switch off.",
                errors={"json": {"rule": {"name": [f"Not a rule of {template.code}."]}}},
            )
        plan_id = data.get("care_plan_id")
        if plan_id is not None:
            plan = db.session.get(CarePlan, plan_id)
            if plan is None or plan.patient_id != patient_id:
                fail(
                    422,
                    "No such care plan for this patient.",
                    errors={"json": {"care_plan_id": ["Not a care plan of this patient."]}},
                )
        clash = db.session.scalar(
            select(PatientFlagRule.id).where(
                PatientFlagRule.patient_id == patient_id,
                PatientFlagRule.of_template(template.key),
                PatientFlagRule.name == rule.name,
                PatientFlagRule.active.is_(True),
            )
        )
        if clash is not None:
            fail(
                409, f"This patient has a {template.code} rule named {rule.name}; delete it first."
            )
        row = PatientFlagRule(
            patient_id=patient_id,
            template_code=template.code,
            template_organization_id=template.key.organization_id,
            name=rule.name,
            rule=rule.as_json(),
            care_plan_id=plan_id,
            note=data.get("note"),
            created_by_user_id=access.user.id,
            created_at=now(),
            active=True,
        )
        db.session.add(row)
        db.session.flush()
        return row


@blp.route("/patients/<int:patient_id>/flag-rules/<int:rule_id>")
class FlagRuleOne(MethodView):
    @blp.response(204)
    @error_responses(blp, 403, 404)
    def delete(self, patient_id: int, rule_id: int) -> None:
        """End one of the patient's flag rules (kept, inactive, for the record)"""
        access = authorize(current_user(), patient_id, Action.MANAGE_CHECKINS)
        row = db.session.get(PatientFlagRule, rule_id)
        if row is None or row.patient_id != patient_id or not row.active:
            fail(404, "No such flag rule.")
        row.active, row.ended_at, row.ended_by_user_id = False, now(), access.user.id
