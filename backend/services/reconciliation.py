"""Medication reconciliation after a discharge: each change on the discharge list applied to
the patient's medicine list, in one step that first shows what it will do.

============  ===================================================  =========================
change        applying it                                          refused when
============  ===================================================  =========================
``new``       creates the medicine from its proposal (name,        no proposal (no schedule
              strength, Timing, ...) and links the change to it    to create it with), or an
                                                                   active medicine of that
                                                                   name is on the list
``stopped``   stops the medicine (status ``stopped``, ending       no ``medication_id``
              today): its pending reminders are cancelled by the
              re-plan in the same transaction
``changed``   sets the proposal's fields on the medicine (dose,    no ``medication_id`` or
              schedule, instructions ...); its reminders re-plan   no proposal
============  ===================================================  =========================

A selection is applied all or nothing: one refused change refuses the request (422 naming
each) and changes nothing. Each change is claimed with a conditional UPDATE, so of two people
reconciling at once one applies it and the other sees it applied. Applying and the home's
acknowledgement together complete the checklist's ``medication_reconciliation`` task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import invalid
from backend.models import Discharge, Medication, MedicationChange, Patient, User
from backend.services.medications import add_medication, update_medication
from backend.services.transitions import complete_reconciliation

APPLIED = "applied"
WOULD_APPLY = "would_apply"
ALREADY_APPLIED = "already_applied"
REFUSED = "refused"
OUTCOMES = (APPLIED, WOULD_APPLY, ALREADY_APPLIED, REFUSED)


@dataclass
class Outcome:
    change: MedicationChange
    outcome: str
    effect: str
    problem: str | None = None


@dataclass(frozen=True)
class Proposal:
    """The medicine a change proposes: ``fields`` as the API loads them (dates as dates),
    ``as_sent`` the JSON kept on the change."""

    fields: dict[str, Any]
    as_sent: dict[str, Any]


# Loads a proposal kept on a change (JSON) into fields; the API's schema does it.
Loader = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class _Decision:
    change: MedicationChange
    medicine: Medication | None
    proposal: Proposal | None
    effect: str
    problem: str | None


def reconcile(
    db: Session,
    patient: Patient,
    discharge: Discharge,
    by: User,
    proposals: dict[int, Proposal | None],
    dry_run: bool,
    load: Loader,
) -> list[Outcome]:
    """Apply (or, with ``dry_run``, only describe) the changes named in ``proposals`` (change
    id -> the medicine to use, or None for the one recorded with the change). An empty
    ``proposals`` means every change of the discharge."""
    changes = list(
        db.scalars(
            select(MedicationChange)
            .where(MedicationChange.discharge_id == discharge.id)
            .order_by(MedicationChange.id)
        )
    )
    by_id = {c.id: c for c in changes}
    unknown = sorted(set(proposals) - set(by_id))
    if unknown:
        raise invalid(
            {"changes": {str(i): {"id": ["No such change on this discharge."]} for i in unknown}}
        )
    selected = [c for c in changes if c.id in proposals] if proposals else changes
    decisions = [_decide(db, patient, c, proposals.get(c.id) or _kept(c, load)) for c in selected]
    refused = {d.change.id: d.problem for d in decisions if d.problem is not None}
    if refused and not dry_run:
        raise invalid({"changes": {str(i): {"change": [p]} for i, p in refused.items()}})
    if dry_run:
        return [_described(d) for d in decisions]
    outcomes = [_apply(db, patient, by, d) for d in decisions]
    complete_reconciliation(db, discharge.id)
    return outcomes


def _described(d: _Decision) -> Outcome:
    if d.change.applied_at is not None:
        return Outcome(d.change, ALREADY_APPLIED, d.effect)
    if d.problem is not None:
        return Outcome(d.change, REFUSED, d.effect, d.problem)
    return Outcome(d.change, WOULD_APPLY, d.effect)


def _kept(change: MedicationChange, load: Loader) -> Proposal | None:
    if not change.proposal:
        return None
    return Proposal(load(change.proposal), change.proposal)


def _decide(
    db: Session, patient: Patient, change: MedicationChange, proposal: Proposal | None
) -> _Decision:
    """What applying ``change`` would do, or why it cannot (read-only)."""
    medicine = db.get(Medication, change.medication_id) if change.medication_id else None
    if change.applied_at is not None:
        return _Decision(change, medicine, proposal, "Already applied.", None)
    if change.change == "stopped":
        if medicine is None:
            return _refuse(change, "Which medicine stops? Record it with its medication_id.")
        effect = f"Stops {_label(medicine)}; its pending reminders are cancelled."
        if medicine.status == "stopped":
            effect = f"{_label(medicine)} is already stopped; the change is marked applied."
        return _Decision(change, medicine, None, effect, None)
    if change.change == "new":
        if not proposal:
            return _refuse(
                change,
                "A new medicine needs its details (at least a schedule, or as_needed): send "
                "them as this change's medication.",
            )
        proposal = Proposal({"name": change.name, **proposal.fields}, proposal.as_sent)
        if not proposal.fields.get("timing") and not proposal.fields.get("as_needed"):
            return _refuse(
                change, "A new medicine needs a schedule (timing) unless it is as_needed."
            )
        same = _active_named(db, patient.id, str(proposal.fields["name"]))
        if same is not None:
            return _refuse(
                change,
                f"{_label(same)} (medication {same.id}) is already on the active list: stop "
                "or change it instead of adding it twice.",
            )
        effect = f"Adds {_proposed_label(proposal.fields)}."
        return _Decision(change, None, proposal, effect, None)
    # "changed"
    if medicine is None:
        return _refuse(change, "Which medicine changes? Record the change with its medication_id.")
    if not proposal:
        return _refuse(
            change, "Nothing to change: send the fields that change as this change's medication."
        )
    return _Decision(change, medicine, proposal, _change_effect(medicine, proposal.fields), None)


def _refuse(change: MedicationChange, problem: str) -> _Decision:
    return _Decision(change, None, None, "Cannot be applied as recorded.", problem)


def _apply(db: Session, patient: Patient, by: User, d: _Decision) -> Outcome:
    at = now()
    result = db.execute(
        update(MedicationChange)
        .where(MedicationChange.id == d.change.id, MedicationChange.applied_at.is_(None))
        .values(applied_at=at, applied_by_user_id=by.id)
        .execution_options(synchronize_session=False)
    )
    claimed = cast(CursorResult[Any], result).rowcount == 1
    db.refresh(d.change)
    if not claimed:
        return Outcome(d.change, ALREADY_APPLIED, d.effect)
    if d.change.change == "stopped":
        assert d.medicine is not None
        if d.medicine.status != "stopped":
            update_medication(db, d.medicine, _stop_fields(d.medicine, patient))
    elif d.change.change == "new":
        assert d.proposal is not None
        med = add_medication(db, patient, by, d.proposal.fields)
        d.change.medication_id = med.id
    else:
        assert d.medicine is not None and d.proposal is not None
        update_medication(db, d.medicine, d.proposal.fields)
    if d.proposal is not None:
        d.change.proposal = d.proposal.as_sent
    db.flush()
    return Outcome(d.change, APPLIED, d.effect)


def _stop_fields(medicine: Medication, patient: Patient) -> dict[str, Any]:
    today = now().astimezone(ZoneInfo(patient.time_zone)).date()
    fields: dict[str, Any] = {"status": "stopped"}
    if today >= medicine.start_date and (medicine.end_date is None or medicine.end_date > today):
        fields["end_date"] = today
    return fields


def _active_named(db: Session, patient_id: int, name: str) -> Medication | None:
    return db.scalar(
        select(Medication)
        .where(
            Medication.patient_id == patient_id,
            Medication.status != "stopped",
            func.lower(Medication.name) == name.strip().lower(),
        )
        .limit(1)
    )


def _label(medicine: Medication) -> str:
    return f"{medicine.name} {medicine.strength}" if medicine.strength else medicine.name


def _proposed_label(proposal: dict[str, Any]) -> str:
    name, strength = proposal["name"], proposal.get("strength")
    return f"{name} {strength}" if strength else str(name)


WORDS = {
    "timing": "schedule",
    "dose_amount": "amount per dose",
    "prn_max_per_24h": "most doses in 24 h",
    "prn_min_interval_minutes": "minutes between doses",
    "tz_policy": "time-zone policy",
    "refill_threshold_days": "refill reminder",
    "quantity_on_hand": "supply",
}


def _change_effect(medicine: Medication, proposal: dict[str, Any]) -> str:
    parts = []
    for name, value in proposal.items():
        before = getattr(medicine, name, None)
        if before == value:
            continue
        label = WORDS.get(name, name.replace("_", " "))
        if isinstance(value, (dict, list)) or isinstance(before, (dict, list)):
            parts.append(f"{label} changes")
        else:
            parts.append(f"{label} {_shown(before)} → {_shown(value)}")
    if not parts:
        return f"{_label(medicine)} already matches; the change is marked applied."
    return f"Changes {_label(medicine)}: {'; '.join(parts)}"


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)
