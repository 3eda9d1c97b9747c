"""An as-needed (PRN) dose over its 24-hour maximum: a push to the caregivers who watch the
patient's doses.

Who: everyone in the circle holding ``receive_missed_dose_alerts`` (and the managing
caregivers, who hold everything -- for a managed patient, the people who give the doses),
except whoever logged the dose: they were told in the log's answer (``over_limit``). Why that
permission and not ``log_doses``: this is an alert about the patient's safety, the same kind
of news as a missed dose, and ``receive_missed_dose_alerts`` is the grant by which a patient
says "tell this person when my doses go wrong"; ``log_doses`` lets someone act for the
patient, not be alerted about them. The care team gets a worklist item instead
(``backend.services.prn``), not a push.

Keyed ``prn_over_limit:{dose log}:{user}``, due at once, useless after :data:`OVER_LIMIT_LATE`;
content as lock-screen safe as a missed-dose alert (``notifications.texts``). Dropped when
sent if the log was undone meanwhile (:func:`over_limit_check`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.medication import DoseLog
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.reminders.audience import circles
from notifications.outbox import enqueue

KIND = "prn_over_limit"
OVER_LIMIT_LATE = timedelta(hours=3)


def push_over_limit(db: Session, patient: Patient, log: DoseLog, at: datetime) -> int:
    """Queue the over-limit push of ``log`` to each alert holder but its author."""
    circle = circles(db, [patient], at)[patient.id]
    queued = 0
    for user_id in sorted(circle.alert_holders - {log.logged_by_user_id}):
        row = enqueue(
            db,
            dedupe_key=f"{KIND}:{log.id}:{user_id}",
            kind=KIND,
            user_id=user_id,
            patient_id=patient.id,
            subject={"medication_id": log.medication_id, "dose_log_id": log.id},
            due_at=at,
            not_after=at + OVER_LIMIT_LATE,
        )
        queued += row is not None
    return queued


def over_limit_check(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """Dispatcher relevance check: the dose log behind the push was undone (a mis-tap)."""
    ids = {int((r.subject or {}).get("dose_log_id", 0)) for r in reminders}
    undone = set(
        db.scalars(select(DoseLog.id).where(DoseLog.id.in_(ids), DoseLog.undone_at.is_not(None)))
    )
    return {
        r.id: "dose_undone"
        for r in reminders
        if int((r.subject or {}).get("dose_log_id", 0)) in undone
    }
