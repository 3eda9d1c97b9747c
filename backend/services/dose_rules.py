"""Computed worklist rules about medicines: missed doses and low adherence.

* ``missed_doses``: 2 or more doses missed (scheduled, never logged, 4 h past their time) in
  the last 7 local days. The item lists the medicines; its evidence time is the moment the
  newest miss became one (slot + 4 h), so after a resolution only a later miss reopens it.
* ``low_adherence``: day-level PDC under 80 % over the last 30 local days (see
  ``backend/services/adherence``), counted only once there are at least
  ``MIN_DAYS_FOR_PDC`` days with doses, so a medicine started yesterday is not "non-adherent".

Both close themselves (``resolve_by_system``) when the condition no longer holds: doses
logged late with their real time, or the week moving on. Both use the adherence service,
which costs two queries per batch of patients whatever its size, and keep what it computed
as the batch's 7- and 30-day adherence snapshots (one upsert each; the care team's panel
reads them, see ``backend/services/adherence_snapshots``); ``low_adherence`` also keeps the
batch's settled days (``adherence_days``), which the panel counts from when a snapshot is
missing or stale (``backend/services/adherence_counts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Patient
from backend.reminders.timeline import MISSED_AFTER
from backend.services import adherence_snapshots
from backend.services.adherence import PatientAdherence, adherence, overall
from backend.services.adherence_counts import overall_tallies
from backend.services.worklist import (
    patients_with_unresolved,
    raise_work_item,
    resolve_by_system,
)

MISSED_DOSES_DAYS = 7
MISSED_DOSES_AT_LEAST = 2
PDC_DAYS = 30
PDC_BELOW = 0.8
MIN_DAYS_FOR_PDC = 7


def _medicines(result: PatientAdherence, attribute: str) -> list[dict[str, object]]:
    return [
        {"medication_id": med.id, "name": med.name, attribute: getattr(tally, attribute)}
        for med, tally in result.medications
        if getattr(tally, attribute)
    ]


def missed_doses(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    patients = list(db.scalars(select(Patient).where(Patient.id.in_(patient_ids))))
    results = adherence(db, patients, MISSED_DOSES_DAYS, at)
    adherence_snapshots.store(db, overall(results), MISSED_DOSES_DAYS, at)
    flagged = patients_with_unresolved(db, patient_ids, "missed_doses")
    for result in results:
        tally, pid = result.overall, result.patient.id
        if tally.missed >= MISSED_DOSES_AT_LEAST and tally.last_missed_at is not None:
            raise_work_item(
                db,
                patient_id=pid,
                kind="missed_doses",
                key="missed_doses",
                title=f"{tally.missed} missed doses in the last {MISSED_DOSES_DAYS} days",
                detail={
                    "missed": tally.missed,
                    "scheduled": tally.scheduled,
                    "days": MISSED_DOSES_DAYS,
                    "medications": _medicines(result, "missed"),
                },
                evidence_at=tally.last_missed_at + MISSED_AFTER,
                at=at,
            )
        elif pid in flagged:
            resolve_by_system(
                db,
                pid,
                "missed_doses",
                f"Fewer than {MISSED_DOSES_AT_LEAST} missed doses in the last "
                f"{MISSED_DOSES_DAYS} days now.",
            )


def low_adherence(db: Session, at: datetime, patient_ids: Sequence[int]) -> None:
    patients = list(db.scalars(select(Patient).where(Patient.id.in_(patient_ids))))
    results = adherence(db, patients, PDC_DAYS, at)
    adherence_snapshots.store(db, overall(results), PDC_DAYS, at)
    # The settled days' tallies the panel counts from (adherence_counts), kept as the sweep
    # goes: a panel opened after a missed sweep then counts only the last days of each
    # patient (2,000 patients ~0.4 s instead of ~2.5 s). Once a patient's days are kept, a
    # batch counts only its last days again.
    overall_tallies(db, patient_ids, PDC_DAYS, at, keep=True)
    flagged = patients_with_unresolved(db, patient_ids, "low_adherence")
    for result in results:
        tally, pid = result.overall, result.patient.id
        pdc = tally.pdc
        enough = tally.days_with_doses >= MIN_DAYS_FOR_PDC
        if enough and pdc is not None and pdc < PDC_BELOW and tally.last_not_taken_at:
            raise_work_item(
                db,
                patient_id=pid,
                kind="low_adherence",
                key="low_adherence",
                title=f"{round(pdc * 100)} % of days covered over the last {PDC_DAYS} days",
                detail={
                    "pdc": pdc,
                    "days_covered": tally.days_covered,
                    "days_with_doses": tally.days_with_doses,
                    "days": PDC_DAYS,
                    "medications": _medicines(result, "missed"),
                },
                evidence_at=tally.last_not_taken_at + MISSED_AFTER,
                at=at,
            )
        elif enough and pid in flagged:
            resolve_by_system(
                db,
                pid,
                "low_adherence",
                f"{PDC_BELOW:.0%} or more of days covered over the last {PDC_DAYS} days now.",
            )
