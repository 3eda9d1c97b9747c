"""Care transitions: hospital and ER encounters, discharges, the medication changes a
discharge brings, and the checklist of tasks that follows it home.

A discharge ends a hospital stay: each ``discharges`` row points at the
``hospital_admission`` encounter it ends (made with it, or recorded earlier and closed by it),
so the readmission report finds every admission, index stays included, in one table.

The checklist (``transition_tasks``) is four kinds of task, each with its due time:
``medication_reconciliation`` (every change acknowledged at home), ``follow_up_appointment``
(a visit within 7 days), ``call_48h`` (the care team's call, a worklist item) and
``readmission_check`` (the POST-DISCHARGE check-in on days 7, 14 and 30). ``done_at`` is set
once what completes the task has happened (``backend/services/transitions.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime

ENCOUNTER_KINDS = ("hospital_admission", "er_visit", "observation")
REPORTERS = ("patient", "caregiver", "care_team")
CHANGE_KINDS = ("new", "changed", "stopped")
TASK_KINDS = (
    "medication_reconciliation",
    "follow_up_appointment",
    "call_48h",
    "readmission_check",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Encounter(Base):
    """A hospital admission, an ER visit or an observation stay, as someone reported it."""

    __tablename__ = "encounters"
    __table_args__ = (
        Index("ix_encounters_patient_start", "patient_id", "start_at"),
        CheckConstraint(_in("kind", ENCOUNTER_KINDS), name="kind"),
        CheckConstraint(_in("reported_by", REPORTERS), name="reported_by"),
        CheckConstraint("end_at IS NULL OR end_at >= start_at", name="end_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(30))
    facility: Mapped[str] = mapped_column(String(200))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    reported_by: Mapped[str] = mapped_column(String(20))
    recorded_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Discharge(Base):
    """The end of a hospital stay and the start of its transition checklist."""

    __tablename__ = "discharges"
    __table_args__ = (Index("ix_discharges_patient_discharged", "patient_id", "discharged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    # The hospital_admission this discharge ends (one discharge per stay).
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), unique=True)
    facility: Mapped[str] = mapped_column(String(200))
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    recorded_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class MedicationChange(Base):
    """One change on the discharge medication list: who applied it to the patient's medicine
    list (a new medicine created, a stopped one stopped, a changed one changed), and who at
    home acknowledged it."""

    __tablename__ = "medication_changes"
    __table_args__ = (CheckConstraint(_in("change", CHANGE_KINDS), name="change"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    discharge_id: Mapped[int] = mapped_column(ForeignKey("discharges.id"), index=True)
    change: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    # The patient's existing medicine this is about (checked to be theirs), if any.
    medication_id: Mapped[int | None] = mapped_column(ForeignKey("medications.id"), index=True)
    details: Mapped[str | None] = mapped_column(Text)
    # The medicine as the API takes it: all of it for "new", the fields it sets for "changed".
    proposal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    applied_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TransitionTask(Base):
    """One item of a discharge's checklist; ``day`` numbers the readmission checks (7, 14, 30)."""

    __tablename__ = "transition_tasks"
    __table_args__ = (
        UniqueConstraint("discharge_id", "kind", "day"),
        # The sweep: a batch of patients' tasks that are not done yet.
        Index("ix_transition_tasks_patient_done", "patient_id", "done_at"),
        CheckConstraint(_in("kind", TASK_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    discharge_id: Mapped[int] = mapped_column(ForeignKey("discharges.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(30))
    day: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What completed it: the worklist item resolved (call_48h), the appointment booked
    # (follow_up_appointment), the check-in schedule (readmission_check). The schedule
    # table belongs to the check-in module, hence no foreign key here.
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), index=True)
    checkin_schedule_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
