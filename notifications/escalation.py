"""Escalation chains: after a dose's reminder, who is told after how long if it is not logged.

A chain is an ordered list of steps ``{"after_minutes": N, "notify": WHO}`` (``WHO`` is
``patient``, ``caregiver`` with a ``user_id``, ``caregivers`` -- everyone holding
receive_missed_dose_alerts and the managing caregivers -- or ``care_team``). The patient (or
managing caregiver) sets one per patient, with a per-medication override. With none set the
chain is the default: the patient again after 30 minutes, the caregivers after 60 (15 and 30
for a time-critical medicine).

One caregiver answering an alert with "I'm on it" records a :class:`DoseAcknowledgement`
for that dose; the later steps stop and the others see who took it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime
from backend.models.caregiving import CaregiverGrant, Permission
from backend.models.careteam import CareTeamMember, Enrollment
from backend.models.medication import Medication
from backend.models.patient import Patient

TARGETS = ("patient", "caregiver", "caregivers", "care_team")
MAX_STEPS = 8
MAX_AFTER_MINUTES = 24 * 60

FOLLOW_UP = timedelta(minutes=30)
ESCALATE = timedelta(minutes=60)
FOLLOW_UP_CRITICAL = timedelta(minutes=15)
ESCALATE_CRITICAL = timedelta(minutes=30)


class EscalationChain(Base):
    """A patient's chain (``medication_id`` None) or one medicine's override."""

    __tablename__ = "escalation_chains"
    __table_args__ = (UniqueConstraint("patient_id", "medication_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    medication_id: Mapped[int | None] = mapped_column(ForeignKey("medications.id"))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class DoseAcknowledgement(Base):
    """ "I'm on it": the caregiver who took a missed dose in hand. One per dose."""

    __tablename__ = "dose_acknowledgements"
    __table_args__ = (UniqueConstraint("medication_id", "slot_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    medication_id: Mapped[int] = mapped_column(ForeignKey("medications.id"))
    slot_key: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reminder_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


@dataclass(frozen=True)
class Step:
    after: timedelta
    notify: str
    user_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "after_minutes": int(self.after.total_seconds() // 60),
            "notify": self.notify,
        }
        if self.user_id is not None:
            out["user_id"] = self.user_id
        return out


def default_chain(med: Medication) -> list[Step]:
    if med.time_critical:
        return [Step(FOLLOW_UP_CRITICAL, "patient"), Step(ESCALATE_CRITICAL, "caregivers")]
    return [Step(FOLLOW_UP, "patient"), Step(ESCALATE, "caregivers")]


def parse_steps(raw: Iterable[dict[str, Any]]) -> list[Step]:
    return [
        Step(timedelta(minutes=int(s["after_minutes"])), s["notify"], s.get("user_id")) for s in raw
    ]


def chains_for(db: Session, patient_ids: Iterable[int]) -> dict[tuple[int, int | None], list[Step]]:
    """Every stored chain of these patients by (patient_id, medication_id); one query."""
    ids = list(patient_ids)
    if not ids:
        return {}
    rows = db.scalars(select(EscalationChain).where(EscalationChain.patient_id.in_(ids)))
    return {(c.patient_id, c.medication_id): parse_steps(c.steps) for c in rows}


def chain_of(chains: dict[tuple[int, int | None], list[Step]], med: Medication) -> list[Step]:
    found = chains.get((med.patient_id, med.id))
    if found is None:
        found = chains.get((med.patient_id, None))
    return default_chain(med) if found is None else found


@dataclass
class Circle:
    """Who around a patient may be told: the patient's login, caregivers, the team."""

    patient_user: int | None = None
    caregivers: set[int] = field(default_factory=set)  # any active grant
    alert_holders: set[int] = field(default_factory=set)  # the permission, or managing
    managing: set[int] = field(default_factory=set)
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
        if managing or Permission.RECEIVE_MISSED_DOSE_ALERTS.value in (permissions or []):
            circle.alert_holders.add(user_id)
    team = db.execute(
        select(Enrollment.patient_id, CareTeamMember.user_id)
        .join(CareTeamMember, CareTeamMember.care_team_id == Enrollment.care_team_id)
        .where(
            Enrollment.patient_id.in_(by_id),
            Enrollment.ended_at.is_(None),
            CareTeamMember.removed_at.is_(None),
        )
    )
    for patient_id, user_id in team:
        by_id[patient_id].care_team.add(user_id)
    return by_id
