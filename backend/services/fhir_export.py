"""A patient's record as a FHIR R4 Bundle, and single resources by id, under the one access
policy: each part of the record is in the bundle only when the reader holds the permission
the JSON API asks for it (medicines and doses ``view_medications``, appointments
``view_appointments``, care plans and encounters ``view_care_plan``, check-in answers
``view_checkins`` -- never the ones hidden from caregivers --, messages
``message_care_team``, the care team ``view_care_team``, the caregivers ``manage_access``).
Someone with no relation to the patient gets the same 404 as for a patient that does not
exist; every export by someone other than the patient is in the access log
(``export_fhir``). The mapping itself is ``backend.fhir.resources``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.access import (
    Action,
    PatientAccess,
    patients_cared_for,
    record_access,
    resolve,
    team_membership,
)
from backend.checkins.fhir import questionnaire_response
from backend.clock import now
from backend.errors import fail
from backend.fhir import resources as fhir
from backend.models import (
    Appointment,
    CaregiverGrant,
    CarePlan,
    CareTeam,
    CheckinResponse,
    DoseLog,
    Encounter,
    Enrollment,
    FhirLink,
    Medication,
    Message,
    MessageThread,
    Organization,
    User,
)
from backend.services.careteams import members_by_team, patient_teams
from backend.services.checkins import author_role, shown_to_caregivers, template_at

EXPORT_ACTION = "export_fhir"
Resource = dict[str, Any]


def _reader(user: User, patient_id: int, not_found: str) -> PatientAccess:
    access = resolve(user, patient_id)
    if access is None:
        fail(404, not_found)
    record_access(access, EXPORT_ACTION)
    return access


def everything(session: Session, user: User, patient_id: int, base_url: str) -> Resource:
    """``Patient/{id}/$everything``: a searchset Bundle of what ``user`` may see."""
    access = _reader(user, patient_id, "No such patient.")
    found = _record(session, access)
    entries = [
        {
            "fullUrl": f"{base_url}{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match" if r["resourceType"] == "Patient" else "include"},
        }
        for r in found
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": now().isoformat(),
        "total": 1,
        "link": [{"relation": "self", "url": f"{base_url}Patient/{patient_id}/$everything"}],
        "entry": entries,
    }


def _record(session: Session, access: PatientAccess) -> list[Resource]:
    patient = access.patient
    found = [fhir.patient(patient, _source_identifiers(session, patient.id))]
    found += _caregivers(session, access)
    if access.allows(Action.VIEW_CARE_TEAM):
        found += _care_teams(session, patient.id)
    if access.allows(Action.VIEW_CARE_PLAN):
        found += _care_plans(session, patient.id)
        encounters = session.scalars(
            select(Encounter).where(Encounter.patient_id == patient.id).order_by(Encounter.id)
        )
        found += [fhir.encounter(e) for e in encounters]
    if access.allows(Action.VIEW_MEDICATIONS):
        found += _medicines(session, patient.id)
    if access.allows(Action.VIEW_APPOINTMENTS):
        appointments = session.scalars(
            select(Appointment).where(Appointment.patient_id == patient.id).order_by(Appointment.id)
        )
        found += [fhir.appointment(a) for a in appointments]
    if access.allows(Action.VIEW_CHECKINS):
        found += _answers(session, access)
    if access.allows(Action.MESSAGE_CARE_TEAM):
        rows = session.execute(
            select(Message, MessageThread)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(MessageThread.patient_id == patient.id)
            .order_by(Message.id)
        )
        found += [fhir.communication(m, t) for m, t in rows]
    return found


def _source_identifiers(session: Session, patient_id: int) -> list[dict[str, str]]:
    """The business identifiers an imported patient came with (MRN, Synthea id…)."""
    rows = session.execute(
        select(FhirLink.source_system, FhirLink.source_id)
        .where(FhirLink.patient_id == patient_id, FhirLink.kind == "patient")
        .order_by(FhirLink.id)
    )
    return [{"system": system, "value": value} for system, value in rows if "://" in system]


def _caregivers(session: Session, access: PatientAccess) -> list[Resource]:
    """Every grant for the patient's side (who manages access); a caregiver sees their own."""
    stmt = select(CaregiverGrant, User).join(User, User.id == CaregiverGrant.caregiver_user_id)
    stmt = stmt.where(CaregiverGrant.patient_id == access.patient.id)
    if not access.allows(Action.MANAGE_ACCESS):
        if access.grant is None:
            return []
        stmt = stmt.where(CaregiverGrant.id == access.grant.id)
    rows = session.execute(stmt.order_by(CaregiverGrant.id))
    return [fhir.related_person(grant, user, access.patient.id) for grant, user in rows]


def _care_teams(session: Session, patient_id: int) -> list[Resource]:
    teams = patient_teams(session, patient_id)
    members = members_by_team(session, [team.id for team, _, _ in teams])
    found = [
        fhir.care_team(team, org.name, [(m.user_id, m.role) for m, _ in members[team.id]])
        for team, org, _ in teams
    ]
    people = {user.id: user for rows in members.values() for _, user in rows}
    found += [fhir.practitioner(people[uid]) for uid in sorted(people)]
    return found


def _care_plans(session: Session, patient_id: int) -> list[Resource]:
    found: list[Resource] = []
    plans = session.scalars(
        select(CarePlan).where(CarePlan.patient_id == patient_id).order_by(CarePlan.id)
    )
    for plan in plans:
        found.append(fhir.care_plan(plan))
        found += [fhir.condition(plan, c) for c in plan.conditions]
        found += [fhir.goal(plan, g) for g in plan.goals]
    return found


def _medicines(session: Session, patient_id: int) -> list[Resource]:
    meds = {
        m.id: m
        for m in session.scalars(
            select(Medication).where(Medication.patient_id == patient_id).order_by(Medication.id)
        )
    }
    found = [fhir.medication_request(m) for m in meds.values()]
    # Columns, not ORM objects: a year of doses is thousands of rows, and building the
    # objects cost more than the rest of the export together.
    logs = session.execute(
        select(
            DoseLog.id,
            DoseLog.patient_id,
            DoseLog.medication_id,
            DoseLog.status,
            DoseLog.taken_at,
            DoseLog.skip_reason,
        )
        .where(DoseLog.patient_id == patient_id, DoseLog.undone_at.is_(None))
        .order_by(DoseLog.id)
    )
    found += [fhir.medication_administration(log, meds[log.medication_id]) for log in logs]
    return found


def _answers(session: Session, access: PatientAccess) -> list[Resource]:
    stmt = select(CheckinResponse).where(CheckinResponse.patient_id == access.patient.id)
    if access.is_caregiver:
        stmt = stmt.where(shown_to_caregivers(CheckinResponse))
    responses = list(session.scalars(stmt.order_by(CheckinResponse.id)))
    authors = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({r.answered_by_user_id for r in responses}))
        )
    }
    templates = {k: template_at(session, k) for k in {r.template_key for r in responses}}
    found = []
    for response in responses:
        template = templates[response.template_key]
        if template is None:
            continue
        author = authors.get(response.answered_by_user_id)
        found.append(
            questionnaire_response(
                template,
                response,
                author_name=None if author is None else author.display_name,
                author_role=author_role(response),
            )
        )
    return found


# One resource by id: how to find its patient, what it needs, how to write it.
Loader = Callable[[Session, int], tuple[int, Action, Callable[[PatientAccess], Resource]] | None]


def _patient(session: Session, rid: int) -> Any:
    # Not loaded here: the policy's look-up is the only one, so a missing id costs the same.
    return (
        rid,
        Action.VIEW_PATIENT,
        lambda a: fhir.patient(a.patient, _source_identifiers(session, rid)),
    )


def _related_person(session: Session, rid: int) -> Any:
    grant = session.get(CaregiverGrant, rid)
    if grant is None:
        return None

    def build(access: PatientAccess) -> Resource:
        own = access.grant is not None and access.grant.id == grant.id
        if not own and not access.allows(Action.MANAGE_ACCESS):
            fail(404, "No such resource.")  # another caregiver's grant: not theirs to learn
        return fhir.related_person(grant, session.get(User, grant.caregiver_user_id), rid)

    return grant.patient_id, Action.VIEW_PATIENT, build


def _simple(model: Any, action: Action, build: Callable[[Any], Resource]) -> Loader:
    def load(session: Session, rid: int) -> Any:
        row = session.get(model, rid)
        if row is None:
            return None
        return row.patient_id, action, lambda _: build(row)

    return load


def _administration(session: Session, rid: int) -> Any:
    log = session.get(DoseLog, rid)
    if log is None or log.undone_at is not None:
        return None

    def build(_: PatientAccess) -> Resource:
        # Loaded once allowed: before, a log that exists would cost a query more than one
        # that does not.
        med = session.get(Medication, log.medication_id)
        assert med is not None  # a log's medicine is never deleted
        return fhir.medication_administration(log, med)

    return log.patient_id, Action.VIEW_MEDICATIONS, build


def _communication(session: Session, rid: int) -> Any:
    # One query whether or not the message exists (its thread says whose it is).
    found = session.execute(
        select(Message, MessageThread)
        .join(MessageThread, MessageThread.id == Message.thread_id)
        .where(Message.id == rid)
    ).first()
    if found is None:
        return None
    message, thread = found
    return (
        thread.patient_id,
        Action.MESSAGE_CARE_TEAM,
        lambda _: fhir.communication(message, thread),
    )


def _questionnaire_response(session: Session, rid: int) -> Any:
    response = session.get(CheckinResponse, rid)
    if response is None:
        return None

    def build(access: PatientAccess) -> Resource:
        template = template_at(session, response.template_key)
        hidden = access.is_caregiver and template is not None and template.hidden_from_caregivers
        if template is None or hidden:
            fail(404, "No such resource.")
        author = session.get(User, response.answered_by_user_id)
        return questionnaire_response(
            template,
            response,
            author_name=None if author is None else author.display_name,
            author_role=author_role(response),
        )

    return response.patient_id, Action.VIEW_CHECKINS, build


def _care_plan(session: Session, rid: int) -> Any:
    plan = session.get(CarePlan, rid)
    if plan is None:
        return None
    return plan.patient_id, Action.VIEW_CARE_PLAN, lambda _: fhir.care_plan(plan)


LOADERS: dict[str, Loader] = {
    "Patient": _patient,
    "RelatedPerson": _related_person,
    "CarePlan": _care_plan,
    "MedicationRequest": _simple(Medication, Action.VIEW_MEDICATIONS, fhir.medication_request),
    "MedicationAdministration": _administration,
    "Appointment": _simple(Appointment, Action.VIEW_APPOINTMENTS, fhir.appointment),
    "QuestionnaireResponse": _questionnaire_response,
    "Communication": _communication,
    "Encounter": _simple(Encounter, Action.VIEW_CARE_PLAN, fhir.encounter),
}
RESOURCE_TYPES = (*LOADERS, "CareTeam")


def one(session: Session, user: User, resource_type: str, rid: int) -> Resource:
    """One resource by type and id. One answer for "does not exist" and "not yours to see"
    (404, the same queries as far as the policy goes); a lacking permission on a patient
    the reader sees is a 403, as in the JSON API."""
    if resource_type == "CareTeam":
        return _care_team(session, user, rid)
    loader = LOADERS.get(resource_type)
    if loader is None:
        fail(404, "No such resource type.")
    found = loader(session, rid)
    patient_id, action, build = found if found is not None else (0, Action.VIEW_PATIENT, None)
    access = _reader(user, patient_id, "No such resource.")
    if build is None:
        fail(404, "No such resource.")
    if not access.allows(action):
        fail(403, f"You may see this patient but not {action.value.replace('_', ' ')}.")
    return build(access)


def _care_team(session: Session, user: User, rid: int) -> Resource:
    """A care team serves many patients: its members read it, and so does anyone who may see
    the care team of a patient enrolled on it (in that patient's access log). Its members are
    contained Practitioners, so its references resolve in the resource itself."""
    team = session.get(CareTeam, rid)
    viewer = None
    # Asked whether or not the team exists, so a 404 costs the same queries either way.
    if team_membership(user, rid) is None:
        enrolled = set(
            session.scalars(
                select(Enrollment.patient_id).where(
                    Enrollment.care_team_id == rid, Enrollment.active_clause()
                )
            )
        )
        viewer = next(
            (
                a
                for a in patients_cared_for(user)
                if a.patient.id in enrolled and a.allows(Action.VIEW_CARE_TEAM)
            ),
            None,
        )
        if viewer is None:
            team = None
    if team is None:
        fail(404, "No such resource.")
    if viewer is not None:
        record_access(viewer, EXPORT_ACTION)
    organization = session.get(Organization, team.organization_id)
    assert organization is not None
    members = members_by_team(session, [rid])[rid]
    found = fhir.care_team(team, organization.name, [(u.id, m.role) for m, u in members])
    for participant in found.get("participant", []):
        member = participant["member"]["reference"]
        participant["member"] = {"reference": "#" + member.replace("/", "-")}
    if members:
        found["contained"] = [
            {**fhir.practitioner(u), "id": f"Practitioner-{u.id}"} for _, u in members
        ]
    return found


__all__ = ["EXPORT_ACTION", "RESOURCE_TYPES", "everything", "one"]
