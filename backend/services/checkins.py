"""Check-ins against the database: which templates a person may see or a patient may answer,
storing an answer with its score, and raising the worklist items its flag rules call for.

No Flask request state: the API passes the session and the people in.

Who sees which template: the built-ins, everyone; an organization's own templates, its care
team members and the patients enrolled with it (and their caregivers). A patient answers
built-ins and the templates of the organizations they are enrolled with.

A template is named by its code and, for an organization's own, the organization
(``TemplateKey``): codes are unique within an organization, so two organizations of one
patient may each have a ``HF-DAILY``; a request naming such a code then says whose
(``template_organization_id``), and a stored answer, schedule or rule keeps both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from backend.access import Role, care_team_role
from backend.checkins import rules as flag_rules
from backend.checkins.catalog import builtin_templates
from backend.checkins.crisis import crisis_guidance
from backend.checkins.instruments import SAFETY, builtins, score
from backend.checkins.templates import Template, parse_template
from backend.errors import ServiceError
from backend.models import (
    CareTeam,
    CareTeamMember,
    CheckinResponse,
    CheckinTemplate,
    Enrollment,
    Organization,
    Patient,
)
from backend.models.checkin import PatientFlagRule, TemplateKey, TemplateRef
from backend.reminders.checkin_prompts import on_answered
from backend.services.worklist import raise_work_item


def custom_template(row: CheckinTemplate) -> Template:
    return parse_template(row.definition(), organization_id=row.organization_id)


def patient_organization_ids(db: Session, *patient_ids: int) -> list[int]:
    """The organizations of the care teams these patients are enrolled on, earliest
    enrolment first, in one query whatever the number of patients."""
    rows = db.execute(
        select(CareTeam.organization_id)
        .join(Enrollment, Enrollment.care_team_id == CareTeam.id)
        .where(Enrollment.patient_id.in_(patient_ids), Enrollment.active_clause())
        .order_by(Enrollment.enrolled_at, Enrollment.id)
    )
    return list(dict.fromkeys(org_id for (org_id,) in rows))


def member_organization_ids(db: Session, user_id: int) -> list[int]:
    """The organizations the user is an active care team member of."""
    rows = db.scalars(
        select(CareTeam.organization_id)
        .join(CareTeamMember, CareTeamMember.care_team_id == CareTeam.id)
        .where(CareTeamMember.user_id == user_id, CareTeamMember.active_clause())
        .distinct()
        .order_by(CareTeam.organization_id)
    )
    return list(rows)


def _custom(db: Session, organization_ids: Iterable[int]) -> list[Template]:
    ids = sorted(set(organization_ids))
    if not ids:
        return []
    rows = db.scalars(
        select(CheckinTemplate)
        .where(CheckinTemplate.organization_id.in_(ids))
        .order_by(CheckinTemplate.code, CheckinTemplate.organization_id)
    )
    return [custom_template(row) for row in rows]


def visible_templates(db: Session, organization_ids: Iterable[int]) -> list[Template]:
    """The built-ins, then the templates of these organizations by code."""
    return [*builtin_templates().values(), *_custom(db, organization_ids)]


def find_template(
    db: Session,
    code: str,
    organization_ids: Iterable[int],
    *,
    organization_id: int | None = None,
    field: str = "template_organization_id",
) -> Template | None:
    """A template by code if it is a built-in or belongs to one of these organizations;
    ``organization_id`` says whose when several of them have the code. None when there is
    none (whoever else may have one); a 422 naming ``field`` when several have it and
    ``organization_id`` does not pick one."""
    found = builtin_templates().get(code)
    if found is not None:
        return found if organization_id is None else None
    among = set(organization_ids)
    if organization_id is not None:
        among &= {organization_id}
    if not among:
        return None
    rows = list(
        db.scalars(
            select(CheckinTemplate)
            .where(CheckinTemplate.code == code, CheckinTemplate.organization_id.in_(among))
            .order_by(CheckinTemplate.organization_id)
        )
    )
    if len(rows) > 1:
        owners = ", ".join(str(r.organization_id) for r in rows)
        raise ServiceError(
            422,
            f"Organizations {owners} each have a template {code}; say which.",
            errors={_location(field): {field: [f"One of {owners}."]}},
        )
    return custom_template(rows[0]) if rows else None


def _location(field: str) -> str:
    return "query" if field == "organization_id" else "json"


def template_for_patient(
    db: Session, patient_id: int, code: str, organization_id: int | None = None
) -> Template | None:
    """A template the patient may answer (a built-in, or one of the organizations they are
    enrolled with), as :func:`find_template`."""
    return find_template(
        db, code, patient_organization_ids(db, patient_id), organization_id=organization_id
    )


def template_at(db: Session, key: TemplateKey) -> Template | None:
    """A template whoever owns it: for reading back an answer already stored."""
    if key.organization_id is None:
        return builtin_templates().get(key.code)
    row = db.scalar(
        select(CheckinTemplate).where(
            CheckinTemplate.organization_id == key.organization_id,
            CheckinTemplate.code == key.code,
        )
    )
    return None if row is None else custom_template(row)


def hidden_from_caregivers(db: Session, keys: Iterable[TemplateKey]) -> set[TemplateKey]:
    """Those of these templates whose answers caregivers never see (SOCIAL-NEEDS, and any an
    organization made so); one query at most."""
    wanted = set(keys)
    found = {k for k in wanted if k.organization_id is None and _builtin_hidden(k.code)}
    custom = [k for k in wanted if k.organization_id is not None]
    if custom:
        rows = db.execute(
            select(CheckinTemplate.organization_id, CheckinTemplate.code).where(
                CheckinTemplate.hidden_from_caregivers.is_(True),
                CheckinTemplate.code.in_({k.code for k in custom}),
                CheckinTemplate.organization_id.in_({k.organization_id for k in custom}),
            )
        )
        found |= {TemplateKey(org, code) for org, code in rows} & wanted
    return found


def _builtin_hidden(code: str) -> bool:
    template = builtin_templates().get(code)
    return template is not None and template.hidden_from_caregivers


def shown_to_caregivers(model: type[TemplateRef]) -> ColumnElement[bool]:
    """SQL: the rows of ``model`` (answers, schedules, flag rules) whose template's answers
    caregivers may see."""
    hidden_builtins = sorted(c for c in builtin_templates() if _builtin_hidden(c))
    hidden_custom = select(CheckinTemplate.id).where(
        CheckinTemplate.organization_id == model.template_organization_id,
        CheckinTemplate.code == model.template_code,
        CheckinTemplate.hidden_from_caregivers.is_(True),
    )
    builtin_hidden = model.template_organization_id.is_(None) & model.template_code.in_(
        hidden_builtins
    )
    return ~builtin_hidden & ~hidden_custom.exists()


def patient_rules(db: Session, patient_id: int, template: Template) -> list[flag_rules.Rule]:
    rows = db.scalars(
        select(PatientFlagRule)
        .where(
            PatientFlagRule.patient_id == patient_id,
            PatientFlagRule.of_template(template.key),
            PatientFlagRule.active.is_(True),
        )
        .order_by(PatientFlagRule.id)
    )
    return [flag_rules.parse_rule(template, row.rule, for_patient=True) for row in rows]


def crisis_text(db: Session, patient: Patient) -> str:
    """Crisis guidance from the organization the patient was first enrolled with (the US
    default when none, or when it set no text), in the patient's language."""
    texts = None
    for org_id in patient_organization_ids(db, patient.id):
        organization = db.get(Organization, org_id)
        if organization is not None and organization.crisis_guidance:
            texts = organization.crisis_guidance
            break
    return crisis_guidance(patient.language, texts)


def record_answer(
    db: Session,
    *,
    patient: Patient,
    template: Template,
    answers: dict[str, Any],
    user_id: int,
    answered_as: str,
    at: datetime,
) -> CheckinResponse:
    """Store an answer set already checked by ``template.check_answers``, scored, cancel the
    pending prompts of the scheduled occurrences it answers, and raise what its flag rules
    call for, all in the caller's transaction."""
    total = band = None
    flags: list[str] = []
    instrument = builtins().get(template.code) if template.builtin else None
    if instrument is not None:
        result = score(instrument, answers)
        total, band, flags = result.total, result.band, list(result.flags)
    elif template.scoring == "sum":
        total = template.total(answers)
        band = None if total is None else template.band_for(total)
    response = CheckinResponse(
        patient_id=patient.id,
        template_code=template.code,
        template_organization_id=template.key.organization_id,
        answers=answers,
        score=total,
        band=band,
        flags=flags,
        raised=[],
        answered_by_user_id=user_id,
        on_behalf=answered_as != "self",
        answered_as=answered_as,
        at=at,
    )
    db.add(response)
    db.flush()
    on_answered(db, patient, template.key, response.id, at)
    rules = flag_rules.effective(
        flag_rules.template_rules(template), patient_rules(db, patient.id, template)
    )
    earlier = _earlier(db, response, rules)
    matches = flag_rules.evaluate(
        template, rules, answers, total=total, band=band, at=at, earlier=earlier
    )
    response.raised = [_raise(db, response, template, m) for m in matches]
    if any(m.rule.flag == SAFETY for m in matches) and SAFETY not in flags:
        response.flags = [*flags, SAFETY]
    return response


def _earlier(
    db: Session, response: CheckinResponse, rules: Sequence[flag_rules.Rule]
) -> list[flag_rules.Earlier]:
    """The patient's earlier answers to the template within the longest change window."""
    days = max((r.days or 0 for r in rules if r.kind == "change"), default=0)
    if not days:
        return []
    rows = db.execute(
        select(CheckinResponse.at, CheckinResponse.answers)
        .where(
            CheckinResponse.patient_id == response.patient_id,
            CheckinResponse.of_template(response.template_key),
            CheckinResponse.at >= response.at - timedelta(days=days),
            CheckinResponse.at < response.at,
            CheckinResponse.id != response.id,
        )
        .order_by(CheckinResponse.at)
    )
    return [flag_rules.Earlier(at, answers) for at, answers in rows]


def _raise(
    db: Session, response: CheckinResponse, template: Template, match: flag_rules.Match
) -> dict[str, Any]:
    rule = match.rule
    item = raise_work_item(
        db,
        patient_id=response.patient_id,
        kind=rule.flag,
        key=f"checkin:{response.id}:{rule.name}",
        title=match.title[:300],
        urgent=rule.urgent,
        detail={
            "response_id": response.id,
            "template": template.code,
            "template_organization_id": template.key.organization_id,
            "rule": rule.name,
            "item": match.item,
            "value": match.value,
        },
        evidence_at=response.at,
    )
    return {
        "rule": rule.name,
        "flag": rule.flag,
        "urgent": rule.urgent,
        "title": match.title,
        "work_item_id": None if item is None else item.id,
    }


def author_role(response: CheckinResponse) -> str:
    """Who gave the answers, as the FHIR QuestionnaireResponse names them: ``patient``,
    ``practitioner`` (a care-team member) or ``related_person`` (a caregiver)."""
    if not response.on_behalf:
        return "patient"
    if response.answered_as is None:  # stored before the role was kept: as it is now
        member = care_team_role(response.answered_by_user_id, response.patient_id)
        return "practitioner" if member is not None else "related_person"
    return "practitioner" if response.answered_as == Role.CARE_TEAM else "related_person"
