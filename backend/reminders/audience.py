"""Who around a patient may be told what: the one answer for reminders, escalation,
summaries, prompts and messages.

A patient's :class:`Circle` is their own login, the caregivers with an active grant (and
which of them hold receive_missed_dose_alerts or manage the patient) and the members of the
care teams they are enrolled on. It is read in three queries for any number of patients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.caregiving import CaregiverGrant, Permission, grant_allows
from backend.models.careteam import Enrollment, care_team_rows
from backend.models.patient import Patient
from backend.reminders.escalation import Step


@dataclass
class Circle:
    """Who around a patient may be told: the patient's login, caregivers, the team."""

    patient_user: int | None = None
    caregivers: set[int] = field(default_factory=set)  # any active grant
    alert_holders: set[int] = field(default_factory=set)  # the permission, or managing
    managing: set[int] = field(default_factory=set)
    messengers: set[int] = field(default_factory=set)  # message_care_team, or managing
    care_team: set[int] = field(default_factory=set)

    def recipients(self, step: Step) -> list[int]:
        if step.notify == "patient":
            return [self.patient_user] if self.patient_user is not None else []
        if step.notify == "caregiver":
            return [step.user_id] if step.user_id in self.alert_holders else []
        if step.notify == "caregivers":
            return sorted(self.alert_holders)
        return sorted(self.care_team)

    def may_receive(self, user_id: int, kind: str, target: str | None) -> bool:
        """Whether ``user_id`` may still get a reminder of ``kind`` about this patient."""
        if user_id == self.patient_user:
            return True
        if kind == "missed_dose_alert":
            pool = self.care_team if target == "care_team" else self.alert_holders
            return user_id in pool
        return user_id in self.caregivers or user_id in self.care_team


def circles(db: Session, patients: Iterable[Patient], at: datetime) -> dict[int, Circle]:
    """The circle of each patient, in three queries whatever the number of patients."""
    by_id = {p.id: Circle(patient_user=p.user_id) for p in patients}
    if not by_id:
        return by_id
    grants = db.execute(
        select(
            CaregiverGrant.patient_id,
            CaregiverGrant.caregiver_user_id,
            CaregiverGrant.is_managing,
            CaregiverGrant.permissions,
        ).where(CaregiverGrant.patient_id.in_(by_id), CaregiverGrant.active_clause(at))
    )
    for patient_id, user_id, managing, permissions in grants:
        circle = by_id[patient_id]
        circle.caregivers.add(user_id)
        if managing:
            circle.managing.add(user_id)
        if grant_allows(managing, permissions, Permission.RECEIVE_MISSED_DOSE_ALERTS):
            circle.alert_holders.add(user_id)
        if grant_allows(managing, permissions, Permission.MESSAGE_CARE_TEAM):
            circle.messengers.add(user_id)
    for patient_id, members in care_team_user_ids(db, by_id).items():
        by_id[patient_id].care_team |= members
    return by_id


def care_team_user_ids(db: Session, patient_ids: Iterable[int]) -> dict[int, set[int]]:
    """patient id -> the active members of the care teams the patient is enrolled on."""
    rows = db.execute(care_team_rows().where(Enrollment.patient_id.in_(list(patient_ids))))
    found: dict[int, set[int]] = {}
    for patient_id, user_id, _role in rows:
        found.setdefault(patient_id, set()).add(user_id)
    return found
