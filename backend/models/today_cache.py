"""The today view's cache: one person's local day, computed once and served until something
that changes it happens (``backend/services/today_cache``).

A row holds each section of the day already rendered as the JSON the API sends, so a hit is
spliced into the answer without building an object. It is served only while

- its ``version`` equals the patient's ``today_version``: every transaction that changes
  what a day shows (a medicine, a dose log, an appointment, a care plan, a check-in schedule
  or answer, the patient's zone or routine, a template's visibility) bumps that counter when
  it commits (:func:`watch_sessions`), so a row computed before the change is never served
  after it, even one a concurrent reader writes late; and
- ``valid_until`` is in the future: the next instant at which a status in it changes by
  itself (a dose becoming due, overdue or missed; an as-needed dose leaving the 24-hour
  window; a check-in opening or closing), at most an hour ahead.

A row is a cache: losing one costs a recomputation, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, Text, event, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from backend.db import Base, UTCDateTime
from backend.models.appointment import Appointment
from backend.models.careplan import CarePlan
from backend.models.checkin import CheckinResponse, CheckinTemplate
from backend.models.checkin_schedule import CheckinSchedule
from backend.models.medication import DoseLog, Medication
from backend.models.patient import Patient


class TodayCacheRow(Base):
    __tablename__ = "today_cache"
    __table_args__ = (Index("ix_today_cache_day", "day"),)  # pruning old days

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Each a JSON array, as the API renders it (backend/api/today.py).
    doses: Mapped[str] = mapped_column(Text)
    extra_doses: Mapped[str] = mapped_column(Text)
    prn: Mapped[str] = mapped_column(Text)
    appointments: Mapped[str] = mapped_column(Text)
    activities: Mapped[str] = mapped_column(Text)
    checkins: Mapped[str] = mapped_column(Text)
    # The check-ins a caregiver may see: without templates hidden from caregivers.
    checkins_for_caregivers: Mapped[str] = mapped_column(Text)


# What a day shows comes from these rows, each belonging to one patient.
_PER_PATIENT: tuple[type[Any], ...] = (
    Medication,
    DoseLog,
    Appointment,
    CarePlan,
    CheckinSchedule,
    CheckinResponse,
)
_STALE = "today_stale_patients"
_STALE_TEMPLATES = "today_stale_templates"


def _note(session: Session, objects: Iterable[Any]) -> None:
    stale: set[int] = session.info.setdefault(_STALE, set())
    for obj in objects:
        if isinstance(obj, Patient):
            if obj.id is not None:
                stale.add(obj.id)
        elif isinstance(obj, _PER_PATIENT):
            if obj.patient_id is not None:
                stale.add(obj.patient_id)
        elif isinstance(obj, CheckinTemplate) and obj.code:
            session.info.setdefault(_STALE_TEMPLATES, set()).add(obj.code)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    # Changed and deleted rows while their attributes are still loaded.
    _note(session, chain(session.dirty, session.deleted))


def _after_flush(session: Session, _context: Any) -> None:
    # New rows once their foreign keys are filled in.
    _note(session, session.new)
    if isinstance(session.bind, Connection):
        # A session joined to a transaction its caller commits (the worker's batches under
        # write_transaction) never commits itself; they flush once, at the end.
        _bump(session)


def _before_commit(session: Session) -> None:
    session.flush()
    _bump(session)


def _bump(session: Session) -> None:
    stale: set[int] = session.info.pop(_STALE, set())
    templates: set[str] = session.info.pop(_STALE_TEMPLATES, set())
    if not stale and not templates:
        return
    conn = session.connection()
    if templates:
        stale.update(
            conn.scalars(
                select(CheckinSchedule.patient_id).where(
                    CheckinSchedule.template_code.in_(sorted(templates))
                )
            )
        )
    if stale:
        # The last statement of the transaction, in patient order: the row locks it takes
        # are held only until the commit, and two writers take them in the same order.
        conn.execute(
            update(Patient)
            .where(Patient.id.in_(sorted(stale)))
            .values(today_version=Patient.today_version + 1)
        )


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_STALE, None)
    session.info.pop(_STALE_TEMPLATES, None)


def watch_sessions() -> None:
    """Make every session, in every process (API, worker, command line), bump the changed
    patients' ``today_version`` when it commits: no code path can forget to."""
    if event.contains(Session, "before_commit", _before_commit):
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_rollback", _forget)
