"""The one access policy: may user U do action A on patient P?

Every route under ``/patients/{patient_id}`` calls :func:`authorize` first. No access at
all is a 404 (we never confirm that a patient exists); access without the needed
permission is a 403. Every authorized use by someone other than the patient is written
to the access log at the end of the request, with its outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, Subquery, bindparam, cast, null, select, union_all

from backend import db
from backend.clock import now
from backend.db import UTCDateTime
from backend.errors import fail
from backend.models import (
    CaregiverGrant,
    CareTeam,
    CareTeamMember,
    Enrollment,
    Patient,
    Permission,
    User,
)
from backend.models.careteam import TeamRole, care_team_rows


class Role(enum.StrEnum):
    SELF = "self"
    MANAGING_CAREGIVER = "managing_caregiver"
    CAREGIVER = "caregiver"
    CARE_TEAM = "care_team"


class Action(enum.StrEnum):
    VIEW_PATIENT = "view_patient"
    EDIT_PATIENT = "edit_patient"
    MANAGE_ACCESS = "manage_access"
    VIEW_ACCESS_LOG = "view_access_log"
    VIEW_CARE_TEAM = "view_care_team"
    EDIT_CARE_PLAN = "edit_care_plan"
    # Clinical work: scheduling check-ins and setting a patient's flag rules (care team
    # only); recording discharges and hospital or ER encounters (care team and patient side).
    MANAGE_CHECKINS = "manage_checkins"
    MANAGE_TRANSITIONS = "manage_transitions"
    VIEW_CARE_PLAN = Permission.VIEW_CARE_PLAN.value
    VIEW_MEDICATIONS = Permission.VIEW_MEDICATIONS.value
    LOG_DOSES = Permission.LOG_DOSES.value
    MANAGE_MEDICATIONS = Permission.MANAGE_MEDICATIONS.value
    VIEW_APPOINTMENTS = Permission.VIEW_APPOINTMENTS.value
    MANAGE_APPOINTMENTS = Permission.MANAGE_APPOINTMENTS.value
    VIEW_CHECKINS = Permission.VIEW_CHECKINS.value
    RECEIVE_MISSED_DOSE_ALERTS = Permission.RECEIVE_MISSED_DOSE_ALERTS.value
    MESSAGE_CARE_TEAM = Permission.MESSAGE_CARE_TEAM.value


# What anyone who may see the patient at all may do.
_BASIC = frozenset({Action.VIEW_PATIENT, Action.VIEW_CARE_TEAM})
# Care-team members do clinical work; consent and the access log stay with the patient's side.
_CARE_TEAM = _BASIC | {
    Action.EDIT_CARE_PLAN,
    Action.MANAGE_CHECKINS,
    Action.MANAGE_TRANSITIONS,
    Action.VIEW_CARE_PLAN,
    Action.VIEW_MEDICATIONS,
    Action.LOG_DOSES,
    Action.MANAGE_MEDICATIONS,
    Action.VIEW_APPOINTMENTS,
    Action.MANAGE_APPOINTMENTS,
    Action.VIEW_CHECKINS,
    Action.MESSAGE_CARE_TEAM,
}
# What each care-team role may do: the scope of the profession, not a label. Everyone on the
# team reads the plan, the appointments and the check-ins and messages the patient's side.
# - physicians and nurses (and unknown roles, as before): all clinical work;
# - a care coordinator coordinates: the plan, appointments, check-ins and transitions, and
#   reads the medicines, but neither changes medicines nor logs doses;
# - a pharmacist owns the medicine list (reconciliation, changes, transitions' medication
#   changes) but does not edit the care plan or schedule visits and check-ins;
# - a social worker works the plan's psychosocial goals, visits, social-needs check-ins and
#   transitions, and reads (does not change) the medicines;
# - a community health worker visits at home: reads the plan and medicines, logs doses
#   watched, arranges visits;
# - a dietitian advises: reads, and messages.
_TEAM_READS = _BASIC | {
    Action.VIEW_CARE_PLAN,
    Action.VIEW_MEDICATIONS,
    Action.VIEW_APPOINTMENTS,
    Action.VIEW_CHECKINS,
    Action.MESSAGE_CARE_TEAM,
}
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    TeamRole.PHYSICIAN: frozenset(_CARE_TEAM),
    TeamRole.NURSE: frozenset(_CARE_TEAM),
    TeamRole.CARE_COORDINATOR: _TEAM_READS
    | {
        Action.EDIT_CARE_PLAN,
        Action.MANAGE_APPOINTMENTS,
        Action.MANAGE_CHECKINS,
        Action.MANAGE_TRANSITIONS,
    },
    TeamRole.PHARMACIST: _TEAM_READS | {Action.MANAGE_MEDICATIONS, Action.MANAGE_TRANSITIONS},
    TeamRole.SOCIAL_WORKER: _TEAM_READS
    | {
        Action.EDIT_CARE_PLAN,
        Action.MANAGE_APPOINTMENTS,
        Action.MANAGE_CHECKINS,
        Action.MANAGE_TRANSITIONS,
    },
    TeamRole.COMMUNITY_HEALTH_WORKER: _TEAM_READS | {Action.LOG_DOSES, Action.MANAGE_APPOINTMENTS},
    TeamRole.DIETITIAN: _TEAM_READS,
}


def team_actions(role: str) -> frozenset[Action]:
    """What a care-team member in ``role`` may do (the full clinical set for a role this
    table does not know, as every member could before roles had meaning)."""
    return ROLE_ACTIONS.get(role, frozenset(_CARE_TEAM))


# The patient's side may do everything except set the clinical watch on themselves:
# scheduling check-ins and setting flag rules is the care team's, so a patient (or whoever
# holds their phone) cannot switch off the nurse's safety threshold.
_EVERYTHING = frozenset(Action) - {Action.MANAGE_CHECKINS}
_PERMISSION_ACTIONS = frozenset(p.value for p in Permission)


@dataclass(frozen=True)
class PatientAccess:
    patient: Patient
    user: User
    role: Role
    actions: frozenset[Action]
    actor_label: str  # what the access log shows: "daughter", "nurse", …
    grant: CaregiverGrant | None = None

    def allows(self, action: Action) -> bool:
        return action in self.actions

    @property
    def is_caregiver(self) -> bool:
        """A caregiver, by consent or managing: someone other than the patient and outside
        the care team (what is kept from caregivers, e.g. SOCIAL-NEEDS answers, keys on it)."""
        return self.role in (Role.CAREGIVER, Role.MANAGING_CAREGIVER)


def resolve(user: User, patient_id: int) -> PatientAccess | None:
    """How ``user`` relates to the patient right now, or None for no relation at all."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        # The same queries an outsider's look at an existing patient costs, so a 404 takes
        # as long whether or not the patient exists (ids are sequential; time must not tell).
        _active_grant(user, patient_id)
        care_team_role(user.id, patient_id)
        return None
    if patient.user_id == user.id:
        return PatientAccess(patient, user, Role.SELF, _EVERYTHING, "self")
    grant = _active_grant(user, patient_id)
    if grant is not None:
        return access_for_grant(user, patient, grant)
    member_role = care_team_role(user.id, patient_id)
    if member_role is not None:
        return PatientAccess(patient, user, Role.CARE_TEAM, team_actions(member_role), member_role)
    return None


def _active_grant(user: User, patient_id: int) -> CaregiverGrant | None:
    """The user's active grant on the patient, a managing one first."""
    return db.session.scalar(
        select(CaregiverGrant)
        .where(
            CaregiverGrant.patient_id == patient_id,
            CaregiverGrant.caregiver_user_id == user.id,
            CaregiverGrant.active_clause(now()),
        )
        .order_by(CaregiverGrant.is_managing.desc())
        .limit(1)
    )


def access_for_grant(user: User, patient: Patient, grant: CaregiverGrant) -> PatientAccess:
    if grant.is_managing:
        return PatientAccess(
            patient, user, Role.MANAGING_CAREGIVER, _EVERYTHING, "managing_caregiver", grant
        )
    allowed = _BASIC | {Action(p) for p in grant.permissions if p in _PERMISSION_ACTIONS}
    return PatientAccess(
        patient, user, Role.CAREGIVER, frozenset(allowed), grant.relationship, grant
    )


def care_team_role(user_id: int, patient_id: int) -> str | None:
    row = db.session.execute(
        care_team_rows()
        .where(CareTeamMember.user_id == user_id, Enrollment.patient_id == patient_id)
        .limit(1)
    ).first()
    return None if row is None else str(row.role)


def verified_label(access: PatientAccess) -> str:
    """What the user is to the patient, as the policy knows it (never from their own name):
    "patient", "daughter", "managing caregiver (son)", "nurse, Riverside Primary Care A"."""
    if access.role is Role.SELF:
        return "patient"
    if access.grant is not None:
        relation = access.grant.relationship
        return f"managing caregiver ({relation})" if access.grant.is_managing else relation
    team = db.session.scalar(
        select(CareTeam.name)
        .join(Enrollment, Enrollment.care_team_id == CareTeam.id)
        .join(CareTeamMember, CareTeamMember.care_team_id == CareTeam.id)
        .where(
            Enrollment.patient_id == access.patient.id,
            Enrollment.active_clause(),
            CareTeamMember.user_id == access.user.id,
            CareTeamMember.active_clause(),
        )
        .order_by(CareTeam.id)
        .limit(1)
    )
    return f"{access.actor_label}, {team}" if team else access.actor_label


def team_membership(user: User, team_id: int) -> CareTeamMember | None:
    """The user's active membership of the team; teams they are not on do not exist for them
    (one query whether or not the team exists: a 404 must not take longer for a real one)."""
    return db.session.scalar(
        select(CareTeamMember).where(
            CareTeamMember.care_team_id == team_id,
            CareTeamMember.user_id == user.id,
            CareTeamMember.active_clause(),
        )
    )


def my_team_ids(user_id: int) -> Select[Any]:
    """The teams the user is an active member of, as a subquery."""
    return select(CareTeamMember.care_team_id).where(
        CareTeamMember.user_id == user_id, CareTeamMember.active_clause()
    )


def panel_patient_ids(user_id: int, team_id: int | None = None) -> Select[Any]:
    """The patients enrolled on the user's teams (or on one of them), as a subquery: a
    care-team member's panel, the same rule as :func:`care_team_role` for one patient."""
    teams = my_team_ids(user_id)
    if team_id is not None:
        teams = teams.where(CareTeamMember.care_team_id == team_id)
    return select(Enrollment.patient_id).where(
        Enrollment.care_team_id.in_(teams), Enrollment.active_clause()
    )


def authorize(user: User, patient_id: int, action: Action) -> PatientAccess:
    access = resolve(user, patient_id)
    if access is None:
        fail(404, "No such patient.")
    if access.role is not Role.SELF:
        record_access(access, action)
    if not access.allows(action):
        fail(403, f"You may see this patient but not {action.value.replace('_', ' ')}.")
    return access


def cared_for_rows() -> Subquery:
    """Whom the user (bind ``user_id``) cares for at ``at``: their own record, with no grant,
    and each patient of an active grant, as (patient_id, grant_id) rows -- a subquery, so the
    today view reads its cached days in the same statement."""
    own = select(Patient.id.label("patient_id"), cast(null(), Integer).label("grant_id")).where(
        Patient.user_id == bindparam("user_id")
    )
    granted = select(CaregiverGrant.patient_id, CaregiverGrant.id).where(
        CaregiverGrant.caregiver_user_id == bindparam("user_id"),
        CaregiverGrant.active_clause(bindparam("at", type_=UTCDateTime)),
    )
    return union_all(own, granted).subquery("cared_for")


_CARED = cared_for_rows()
# Built once: asked on many requests.
_CARED_FOR = (
    select(Patient, CaregiverGrant)
    .join_from(_CARED, Patient, Patient.id == _CARED.c.patient_id)
    .outerjoin(CaregiverGrant, CaregiverGrant.id == _CARED.c.grant_id)
)


def patients_cared_for(user: User) -> list[PatientAccess]:
    """The user's own record and everyone they care for by an active grant (one query)."""
    rows = db.session.execute(_CARED_FOR, {"user_id": user.id, "at": now()})
    return accesses_of(user, rows.tuples())


def accesses_of(
    user: User, rows: Iterable[tuple[Patient, CaregiverGrant | None]]
) -> list[PatientAccess]:
    """The user's access to each patient of :func:`cared_for_rows`' rows: one per patient (a
    managing grant before another), their own record first, then by patient id."""
    best: dict[int, PatientAccess] = {}
    for patient, grant in rows:
        access = (
            PatientAccess(patient, user, Role.SELF, _EVERYTHING, "self")
            if grant is None
            else access_for_grant(user, patient, grant)
        )
        held = best.get(patient.id)
        if held is None or _RANK[access.role] < _RANK[held.role]:
            best[patient.id] = access
    return sorted(best.values(), key=lambda a: (a.role is not Role.SELF, a.patient.id))


_RANK = {Role.SELF: 0, Role.MANAGING_CAREGIVER: 1, Role.CAREGIVER: 2, Role.CARE_TEAM: 3}


def may_end_grant(access: PatientAccess, grant: CaregiverGrant) -> bool:
    """The patient's side revokes any grant but their own; a caregiver may always leave."""
    if grant.caregiver_user_id == access.user.id:
        return True
    return access.allows(Action.MANAGE_ACCESS)


# The access-log entries of the request in hand: (patient, user, actor label, action), in the
# order recorded, each once (an ordered dict used as a set: a 2,000-patient panel view
# records 2,000 entries without a quadratic membership test). The app starts each request
# empty and writes them with the request's outcome.
AccessEntry = tuple[int, int, str, str]
_pending: ContextVar[dict[AccessEntry, None] | None] = ContextVar("access_log", default=None)


def start_access_log() -> None:
    """A new request: nothing recorded yet."""
    _pending.set({})


def take_access_log() -> list[AccessEntry]:
    """The entries recorded since :func:`start_access_log`, emptied."""
    found = list(_pending.get() or {})
    _pending.set({})
    return found


def _queue(entries: list[AccessEntry]) -> None:
    """Add entries, once each per request (a view that reads twice is one read)."""
    pending = _pending.get()
    if pending is None:
        pending = {}
        _pending.set(pending)
    pending.update(dict.fromkeys(entries))


def record_access(access: PatientAccess, action: Action | str) -> None:
    """Queue an access-log entry (written at the end of the request with its outcome). The
    patient's own reads are not logged: the log is of who *else* saw their data."""
    if access.role is Role.SELF:
        return
    name = action.value if isinstance(action, Action) else action
    _queue([(access.patient.id, access.user.id, access.actor_label, name)])


def record_team_change(patient_id: int, user_id: int, role: str, action: str) -> None:
    """Queue the access-log entry for a team admin's change to the patient's care team
    (enrolled, enrolment ended): the patient sees who put them on a team or took them off."""
    _queue([(patient_id, user_id, role, action)])


def record_panel_access(user_id: int, patient_ids: list[int], action: str) -> None:
    """Queue access-log entries for a care-team member's panel view (worklist, panel,
    adherence): one per patient shown, with the action named for the view and the member's
    role on the patient's team -- the same label :func:`authorize` writes (one query)."""
    if not patient_ids:
        return
    # All of the member's enrolments, filtered here: an IN list of a 2,000-patient panel's
    # ids cost more to build and send than the rows it saves.
    wanted = set(patient_ids)
    roles = {
        row.patient_id: row.role
        for row in db.session.execute(care_team_rows().where(CareTeamMember.user_id == user_id))
        if row.patient_id in wanted
    }
    _queue([(pid, user_id, roles.get(pid, "care_team"), action) for pid in patient_ids])
