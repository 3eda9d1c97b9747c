"""Escalation chains: after a dose's reminder, who is told after how long if it is not logged.

A chain is an ordered list of steps ``{"after_minutes": N, "notify": WHO}`` (``WHO`` is
``patient``, ``caregiver`` with a ``user_id``, ``caregivers`` -- everyone holding
receive_missed_dose_alerts and the managing caregivers -- or ``care_team``). The patient (or
managing caregiver) sets one per patient, with a per-medication override. With none set the
chain is the default: the patient again after 30 minutes, the caregivers after 60 (15 and 30
for a time-critical medicine); for a managed patient then the care team after 120 (60). A
"patient" step reaches who gives the doses (``Circle.givers``): the patient, the chosen
caregivers, or both.

One caregiver answering an alert with "I'm on it" records a :class:`DoseAcknowledgement`
for that dose; the later steps stop and the others see who took it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db import among
from backend.models.escalation import EscalationChain
from backend.reminders.timeline import ESCALATE, ESCALATE_CRITICAL, FOLLOW_UP, FOLLOW_UP_CRITICAL
from backend.schedule.medicines import Scheduled

TARGETS = ("patient", "caregiver", "caregivers", "care_team")

MAX_STEPS = 8

MAX_AFTER_MINUTES = 24 * 60


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


def default_chain(med: Scheduled, managed: bool = False) -> list[Step]:
    """The chain when none is set. For a managed patient (no login) the "patient" step
    reaches who gives the doses, the caregivers come next, and -- with nobody at home who
    could take the dose on their own -- the care team last, at twice the caregivers' delay."""
    follow_up, escalate = (
        (FOLLOW_UP_CRITICAL, ESCALATE_CRITICAL) if med.time_critical else (FOLLOW_UP, ESCALATE)
    )
    chain = [Step(follow_up, "patient"), Step(escalate, "caregivers")]
    if managed:
        chain.append(Step(2 * escalate, "care_team"))
    return chain


def parse_steps(raw: Iterable[dict[str, Any]]) -> list[Step]:
    return [
        Step(timedelta(minutes=int(s["after_minutes"])), s["notify"], s.get("user_id")) for s in raw
    ]


def chains_for(db: Session, patient_ids: Iterable[int]) -> dict[tuple[int, int | None], list[Step]]:
    """Every stored chain of these patients by (patient_id, medication_id); one query."""
    ids = list(patient_ids)
    if not ids:
        return {}
    rows = db.scalars(
        select(EscalationChain).where(among(db, EscalationChain.patient_id, list(ids)))
    )
    return {(c.patient_id, c.medication_id): parse_steps(c.steps) for c in rows}


def chain_of(
    chains: dict[tuple[int, int | None], list[Step]], med: Scheduled, managed: bool = False
) -> list[Step]:
    found = chains.get((med.patient_id, med.id))
    if found is None:
        found = chains.get((med.patient_id, None))
    return default_chain(med, managed) if found is None else found
