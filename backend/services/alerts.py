"""Missed-dose alerts as the people who got them see them: "I'm on it", and the list of
one's open and recent alerts with who took each.

"I'm on it" (:func:`take`) is for an alert that reached you (``sent``; 409 before): the
first taker is recorded, the later steps of that dose to *others* stop (never the patient's
own reminders or follow-up, ``backend.reminders.doses.acknowledge``), and on everyone else's
phone the same alert is replaced by "Ana is on it" (``backend.reminders.alert_taken``), all in
the caller's transaction.

The list (:func:`mine`) holds the missed-dose alerts that reached you in the last
:data:`RECENT`, newest first, about patients you may still see (your own record, an active
grant, a team's panel); each says whether it is ``open`` (nobody took it, the dose is not
logged), ``taken`` (someone said "I'm on it": who and when) or ``dose_logged``. Listing them
is a read of each patient's data: one ``view_alerts`` access-log entry per patient shown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.orm import Session

from backend.access import (
    Role,
    panel_patient_ids,
    patients_cared_for,
    record_access,
    record_panel_access,
)
from backend.models import DoseLog, Patient, User
from backend.models.escalation import DoseAcknowledgement
from backend.models.outbox import Reminder
from backend.reminders.alert_taken import replace_others
from backend.reminders.doses import acknowledge

RECENT = timedelta(days=7)
ACCESS_ACTION = "view_alerts"


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    TAKEN = "taken"
    DOSE_LOGGED = "dose_logged"


def take(session: Session, reminder: Reminder, at: datetime) -> DoseAcknowledgement | None:
    """ "I'm on it" on ``reminder`` (a missed-dose alert of its recipient); returns who took
    the dose in hand (the first taker, maybe someone else)."""
    acknowledge(session, reminder, at)
    ack = _acks(session, [reminder]).get(_slot(reminder))
    if ack is not None:
        replace_others(session, ack, at)
    return ack


def mine(user: User, at: datetime) -> tuple[Select[Any], dict[int, Any]]:
    """The query of ``user``'s recent alerts (newest first), and how the user sees each
    patient they may be about (for the access log)."""
    cared = {a.patient.id: a for a in patients_cared_for(user)}
    stmt = (
        select(Reminder)
        .where(
            Reminder.user_id == user.id,
            Reminder.kind == "missed_dose_alert",
            Reminder.state == "sent",
            Reminder.sent_at >= at - RECENT,
            or_(
                Reminder.patient_id.in_(list(cared)),
                Reminder.patient_id.in_(panel_patient_ids(user.id)),
            ),
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
    )
    return stmt, cared


@dataclass(frozen=True)
class AlertView:
    reminder: Reminder
    patient: Patient
    status: AlertStatus
    ack: DoseAcknowledgement | None
    taker: User | None


def _slot(reminder: Reminder) -> tuple[int, str]:
    subject = reminder.subject or {}
    return int(subject.get("medication_id", 0)), str(subject.get("slot_key", ""))


_Slot = tuple[int, str]


def _acks(session: Session, reminders: list[Reminder]) -> dict[_Slot, DoseAcknowledgement]:
    slots = list({_slot(r) for r in reminders})
    if not slots:
        return {}
    found = session.scalars(
        select(DoseAcknowledgement).where(
            tuple_(DoseAcknowledgement.medication_id, DoseAcknowledgement.slot_key).in_(slots)
        )
    )
    return {(a.medication_id, a.slot_key): a for a in found}


def describe(
    session: Session, user: User, reminders: list[Reminder], cared: dict[int, Any]
) -> list[AlertView]:
    """Each alert of a page with its patient, status and taker (five queries a page), and
    the page's access-log entries."""
    slots = list({_slot(r) for r in reminders})
    acks = _acks(session, reminders)
    logged: set[tuple[int, str]] = set()
    if slots:
        logged = {
            (m, k or "")
            for m, k in session.execute(
                select(DoseLog.medication_id, DoseLog.slot_key).where(
                    tuple_(DoseLog.medication_id, DoseLog.slot_key).in_(slots),
                    DoseLog.undone_at.is_(None),
                )
            )
        }
    takers = {a.user_id for a in acks.values()}
    people = (
        {u.id: u for u in session.scalars(select(User).where(User.id.in_(takers)))}
        if takers
        else {}
    )
    patient_ids = {r.patient_id for r in reminders if r.patient_id is not None}
    patients = (
        {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))}
        if patient_ids
        else {}
    )
    views = []
    for r in reminders:
        slot = _slot(r)
        ack = acks.get(slot)
        status = (
            AlertStatus.DOSE_LOGGED
            if slot in logged
            else AlertStatus.TAKEN
            if ack is not None
            else AlertStatus.OPEN
        )
        taker = people.get(ack.user_id) if ack is not None else None
        views.append(AlertView(r, patients[r.patient_id or 0], status, ack, taker))
    shown = sorted(patient_ids)
    for pid in shown:
        access = cared.get(pid)
        if access is not None and access.role is not Role.SELF:
            record_access(access, ACCESS_ACTION)
    record_panel_access(user.id, [pid for pid in shown if pid not in cared], ACCESS_ACTION)
    return views
