"""A care team's panel at a glance: for every patient enrolled on the team, what a nurse scans
first -- open and urgent worklist items, the last check-in's score and band, 7- and 30-day
adherence, the next booked appointment and the last discharge.

A fixed number of queries whatever the panel's size (one per column group, each grouped by
patient), so the console's panel page of 2,000 patients is one request. Adherence comes from
the snapshots the worklist sweep keeps when they are fresh and is computed (and stored) for
the rest (counted in the database, ``backend/services/adherence_counts``), exactly as
``GET /care-teams/{id}/adherence`` does (:func:`panel_tallies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from backend.models import (
    AdherenceSnapshot,
    Appointment,
    CheckinResponse,
    Discharge,
    Enrollment,
    Patient,
    WorkItem,
)
from backend.models.adherence import TALLY_COLUMNS
from backend.models.worklist import UNRESOLVED
from backend.services import adherence_snapshots
from backend.services.adherence_counts import overall_tallies

PANEL_PERIODS = (7, 30)
# What the panel shows of each tally (the full tally: GET /care-teams/{id}/adherence).
TALLY_SHOWN = ("scheduled", "missed", "dose_adherence", "pdc", "computed_at")


@dataclass
class PanelRow:
    patient_id: int
    display_name: str
    birth_date: date | None
    open_items: int = 0
    urgent_items: int = 0
    last_checkin: dict[str, Any] | None = None
    adherence: dict[int, dict[str, Any]] | None = None
    next_appointment: dict[str, Any] | None = None
    last_discharged_at: datetime | None = None

    def as_dict(self, at: datetime) -> dict[str, Any]:
        tallies = self.adherence or {}
        days_since = None
        if self.last_discharged_at is not None:
            days_since = (at - self.last_discharged_at).days
        return {
            "patient_id": self.patient_id,
            "display_name": self.display_name,
            "birth_date": self.birth_date,
            "open_items": self.open_items,
            "urgent_items": self.urgent_items,
            "last_checkin": self.last_checkin,
            "adherence_7": tallies.get(7),
            "adherence_30": tallies.get(30),
            "next_appointment": self.next_appointment,
            "last_discharged_at": self.last_discharged_at,
            "days_since_discharge": days_since,
        }


def _enrolled(team_id: int) -> Select[Any]:
    return select(Enrollment.patient_id).where(
        Enrollment.care_team_id == team_id, Enrollment.active_clause()
    )


def _first(patient: Any, columns: list[Any], order: Any, team_id: int, *where: Any) -> Any:
    """Each enrolled patient's first row by ``order`` (``rank == 1`` of the subquery)."""
    rank = func.row_number().over(partition_by=patient, order_by=order).label("rank")
    ranked = select(patient, *columns, rank).where(patient.in_(_enrolled(team_id)), *where)
    sub = ranked.subquery()
    return select(*(c for c in sub.c if c.name != "rank")).where(sub.c.rank == 1)


def panel_tallies(
    db: Session, team_id: int, patient_ids: list[int], days: int, at: datetime
) -> dict[int, dict[str, Any]]:
    """Each of the team's patients' adherence over ``days`` with its ``computed_at``: the
    stored snapshot when fresh, else computed now (and stored for the next request)."""
    snapshot = [getattr(AdherenceSnapshot, name) for name in TALLY_COLUMNS]
    tallies: dict[int, dict[str, Any]] = {}
    # The team's patients as a subquery, not 2,000 bound parameters (which psycopg parses
    # one by one: half the request's time on a 2,000-patient panel).
    for pid, computed_at, *tally in db.execute(
        select(AdherenceSnapshot.patient_id, AdherenceSnapshot.computed_at, *snapshot).where(
            AdherenceSnapshot.patient_id.in_(_enrolled(team_id)), AdherenceSnapshot.days == days
        )
    ).all():
        if adherence_snapshots.is_fresh(computed_at, at):
            tallies[pid] = {
                "computed_at": computed_at,
                **dict(zip(TALLY_COLUMNS, tally, strict=True)),
            }
    stale = [pid for pid in patient_ids if pid not in tallies]
    if stale:
        computed = overall_tallies(db, stale, days, at)
        adherence_snapshots.store_quietly(db, computed, days, at)
        for pid, counts in computed.items():
            tallies[pid] = {"computed_at": at, **counts}
    return tallies


def panel(db: Session, team_id: int, at: datetime) -> list[dict[str, Any]]:
    """Every patient enrolled on the team, by name."""
    rows = {
        pid: PanelRow(pid, name, born)
        for pid, name, born in db.execute(
            select(Patient.id, Patient.display_name, Patient.birth_date)
            .where(Patient.id.in_(_enrolled(team_id)))
            .order_by(Patient.display_name, Patient.id)
        )
    }
    if not rows:
        return []
    for pid, open_count, urgent_count in db.execute(
        select(
            WorkItem.patient_id,
            func.count(),
            func.sum(case((WorkItem.urgent.is_(True), 1), else_=0)),
        )
        .where(WorkItem.patient_id.in_(_enrolled(team_id)), WorkItem.status.in_(UNRESOLVED))
        .group_by(WorkItem.patient_id)
    ):
        rows[pid].open_items, rows[pid].urgent_items = int(open_count), int(urgent_count or 0)

    last_checkins = _first(
        CheckinResponse.patient_id,
        [
            CheckinResponse.template_code,
            CheckinResponse.template_organization_id,
            CheckinResponse.score,
            CheckinResponse.band,
            CheckinResponse.at,
        ],
        (CheckinResponse.at.desc(), CheckinResponse.id.desc()),
        team_id,
    )
    for r in db.execute(last_checkins):
        rows[r.patient_id].last_checkin = {
            "template": r.template_code,
            "template_organization_id": r.template_organization_id,
            "score": r.score,
            "band": r.band,
            "at": r.at,
        }

    next_visits = _first(
        Appointment.patient_id,
        [Appointment.id, Appointment.title, Appointment.start_at, Appointment.time_zone],
        (Appointment.start_at, Appointment.id),
        team_id,
        Appointment.status == "booked",
        Appointment.start_at >= at,
    )
    for r in db.execute(next_visits):
        rows[r.patient_id].next_appointment = {
            "id": r.id,
            "title": r.title,
            "start": r.start_at,
            "time_zone": r.time_zone,
        }

    for pid, discharged in db.execute(
        select(Discharge.patient_id, func.max(Discharge.discharged_at))
        .where(Discharge.patient_id.in_(_enrolled(team_id)), Discharge.discharged_at <= at)
        .group_by(Discharge.patient_id)
    ):
        rows[pid].last_discharged_at = discharged

    for days in PANEL_PERIODS:
        tallies = panel_tallies(db, team_id, list(rows), days, at)
        for pid, tally in tallies.items():
            row = rows[pid]
            shown = {key: tally[key] for key in TALLY_SHOWN}
            row.adherence = {**(row.adherence or {}), days: shown}
    return [row.as_dict(at) for row in rows.values()]
