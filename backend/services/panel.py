"""A care team's panel at a glance: for every patient enrolled on the team, what a nurse scans
first -- open and urgent worklist items, the last check-in's score and band, 7- and 30-day
adherence, the next booked appointment and the last discharge.

Served a page at a time (:func:`panel_page`), sorted, filtered and searched by name over the
whole panel. A sort or a filter needs its column for every enrolled patient, so the column
groups it reads are loaded for the whole team (one grouped query each); the other groups are
loaded for the page's patients only (the same queries, for at most a page of ids). Either way
a fixed number of queries whatever the panel's size. Every order ends with the name (compared
without case or accents, as the console's collator did) and then the patient id, so pages
never overlap or skip a patient.

Adherence comes from the snapshots the worklist sweep keeps when they are fresh and is
computed (and stored) for the rest (counted in the database,
``backend/services/adherence_counts``), exactly as ``GET /care-teams/{id}/adherence`` does
(:func:`panel_tallies`); a page sorted by anything but adherence computes only its own
patients' missing tallies.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, func, select
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
LOW_ADHERENCE = 0.8  # the "low" filter: 30-day dose adherence under 80 %
RECENT_DISCHARGE_DAYS = 30  # the "discharged" filter

# Whose rows a query reads: every patient enrolled on the team (a subquery) or a page's ids.
Scope = Select[Any] | Collection[int]


@dataclass
class PanelRow:
    patient_id: int
    display_name: str
    birth_date: date | None
    open_items: int = 0
    urgent_items: int = 0
    last_checkin: dict[str, Any] | None = None
    adherence: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_appointment: dict[str, Any] | None = None
    last_discharged_at: datetime | None = None
    days_since_discharge: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "display_name": self.display_name,
            "birth_date": self.birth_date,
            "open_items": self.open_items,
            "urgent_items": self.urgent_items,
            "last_checkin": self.last_checkin,
            "adherence_7": self.adherence.get(7),
            "adherence_30": self.adherence.get(30),
            "next_appointment": self.next_appointment,
            "last_discharged_at": self.last_discharged_at,
            "days_since_discharge": self.days_since_discharge,
        }


# -- what each sort and filter reads (a missing value sorts last, as in the console) ----------


def _score(row: PanelRow) -> int:
    c = row.last_checkin
    return c["score"] if c is not None and c["score"] is not None else -1


def _rate(row: PanelRow, days: int) -> float:
    tally = row.adherence.get(days)
    return tally["dose_adherence"] if tally and tally["dose_adherence"] is not None else 2.0


def _next(row: PanelRow) -> float:
    visit = row.next_appointment
    return visit["start"].timestamp() if visit is not None else math.inf


def _since(row: PanelRow) -> float:
    days = row.days_since_discharge
    return math.inf if days is None else days


def _name_key(name: str) -> str:
    """A name compared without case or accents ("maria" sorts with "María")."""
    plain = unicodedata.normalize("NFKD", name)
    if plain.isascii():  # most names: nothing to strip (2,000 names in 1 ms, not 12)
        return plain.casefold()
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold()


# name -> (the column groups it reads, its key: smaller first)
SORTS: dict[str, tuple[frozenset[str], Callable[[PanelRow], Any]]] = {
    "name": (frozenset(), lambda r: 0),
    "items": (frozenset({"items"}), lambda r: (-r.urgent_items, -r.open_items)),
    "score": (frozenset({"checkin"}), lambda r: -_score(r)),
    "adherence7": (frozenset({"adherence7"}), lambda r: _rate(r, 7)),
    "adherence30": (frozenset({"adherence30"}), lambda r: _rate(r, 30)),
    "appointment": (frozenset({"appointment"}), _next),
    "discharge": (frozenset({"discharge"}), _since),
}
# name -> (the column groups it reads, whether a row is shown)
FILTERS: dict[str, tuple[frozenset[str], Callable[[PanelRow], bool]]] = {
    "all": (frozenset(), lambda r: True),
    "open": (frozenset({"items"}), lambda r: r.open_items > 0),
    "urgent": (frozenset({"items"}), lambda r: r.urgent_items > 0),
    "low": (frozenset({"adherence30"}), lambda r: _rate(r, 30) < LOW_ADHERENCE),
    "discharged": (frozenset({"discharge"}), lambda r: _since(r) <= RECENT_DISCHARGE_DAYS),
}


@dataclass(frozen=True)
class PanelQuery:
    sort: str = "name"
    show: str = "all"
    search: str = ""


def panel_page(
    db: Session, team_id: int, at: datetime, query: PanelQuery, first: int, size: int
) -> tuple[int, list[dict[str, Any]]]:
    """How many of the team's patients match ``query``, and the ``size`` of them from
    ``first`` in its order."""
    rows = _names(db, team_id)
    sort_reads, sort_key = SORTS[query.sort]
    filter_reads, shown = FILTERS[query.show]
    whole = sort_reads | filter_reads
    for group in sorted(whole):
        LOADERS[group](db, _enrolled(team_id), rows, at)
    needle = query.search.strip().lower()
    matched = [r for r in rows.values() if shown(r) and needle in r.display_name.lower()]
    matched.sort(key=lambda r: (sort_key(r), _name_key(r.display_name), r.patient_id))
    page = matched[first : first + size]
    if page:
        ids = [r.patient_id for r in page]
        for group in sorted(LOADERS.keys() - whole):
            LOADERS[group](db, ids, rows, at)
    return len(matched), [r.as_dict() for r in page]


# -- the column groups: each fills its columns of the rows in scope, in one query ------------

Loader = Callable[[Session, Scope, dict[int, PanelRow], datetime], None]


def _among(column: Any, scope: Scope) -> Any:
    """``column IN scope``: the team's subquery, or a page's ids written into the statement
    (integers read from the database, so safe to render): 100 bound parameters, which psycopg
    parses one by one, cost ~4 ms of a 70 ms page on PostgreSQL."""
    if isinstance(scope, Select):
        return column.in_(scope)
    return column.in_(bindparam("ids", list(scope), expanding=True, literal_execute=True))


def _enrolled(team_id: int) -> Select[Any]:
    return select(Enrollment.patient_id).where(
        Enrollment.care_team_id == team_id, Enrollment.active_clause()
    )


def _names(db: Session, team_id: int) -> dict[int, PanelRow]:
    return {
        pid: PanelRow(pid, name, born)
        for pid, name, born in db.execute(
            select(Patient.id, Patient.display_name, Patient.birth_date).where(
                Patient.id.in_(_enrolled(team_id))
            )
        )
    }


def _first(patient: Any, columns: list[Any], order: Any, scope: Scope, *where: Any) -> Any:
    """Each patient in scope's first row by ``order`` (``rank == 1`` of the subquery)."""
    rank = func.row_number().over(partition_by=patient, order_by=order).label("rank")
    ranked = select(patient, *columns, rank).where(_among(patient, scope), *where)
    sub = ranked.subquery()
    return select(*(c for c in sub.c if c.name != "rank")).where(sub.c.rank == 1)


def _items(db: Session, scope: Scope, rows: dict[int, PanelRow], _at: Any) -> None:
    for pid, open_count, urgent_count in db.execute(
        select(
            WorkItem.patient_id,
            func.count(),
            func.sum(case((WorkItem.urgent.is_(True), 1), else_=0)),
        )
        .where(_among(WorkItem.patient_id, scope), WorkItem.status.in_(UNRESOLVED))
        .group_by(WorkItem.patient_id)
    ):
        rows[pid].open_items, rows[pid].urgent_items = int(open_count), int(urgent_count or 0)


def _checkins(db: Session, scope: Scope, rows: dict[int, PanelRow], _at: Any) -> None:
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
        scope,
    )
    for r in db.execute(last_checkins):
        rows[r.patient_id].last_checkin = {
            "template": r.template_code,
            "template_organization_id": r.template_organization_id,
            "score": r.score,
            "band": r.band,
            "at": r.at,
        }


def _appointments(db: Session, scope: Scope, rows: dict[int, PanelRow], at: datetime) -> None:
    next_visits = _first(
        Appointment.patient_id,
        [Appointment.id, Appointment.title, Appointment.start_at, Appointment.time_zone],
        (Appointment.start_at, Appointment.id),
        scope,
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


def _discharges(db: Session, scope: Scope, rows: dict[int, PanelRow], at: datetime) -> None:
    for pid, discharged in db.execute(
        select(Discharge.patient_id, func.max(Discharge.discharged_at))
        .where(_among(Discharge.patient_id, scope), Discharge.discharged_at <= at)
        .group_by(Discharge.patient_id)
    ):
        rows[pid].last_discharged_at = discharged
        rows[pid].days_since_discharge = (at - discharged).days


def _adherence(days: int) -> Loader:
    def load(db: Session, scope: Scope, rows: dict[int, PanelRow], at: datetime) -> None:
        ids = list(rows) if isinstance(scope, Select) else list(scope)
        for pid, tally in _tallies(db, scope, ids, days, at).items():
            rows[pid].adherence[days] = {key: tally[key] for key in TALLY_SHOWN}

    return load


LOADERS: dict[str, Loader] = {
    "items": _items,
    "checkin": _checkins,
    "appointment": _appointments,
    "discharge": _discharges,
    **{f"adherence{days}": _adherence(days) for days in PANEL_PERIODS},
}


def panel_tallies(
    db: Session, team_id: int, patient_ids: list[int], days: int, at: datetime
) -> dict[int, dict[str, Any]]:
    """Each of the team's patients' adherence over ``days`` with its ``computed_at``: the
    stored snapshot when fresh, else computed now (and stored for the next request)."""
    return _tallies(db, _enrolled(team_id), patient_ids, days, at)


def _tallies(
    db: Session, scope: Scope, patient_ids: list[int], days: int, at: datetime
) -> dict[int, dict[str, Any]]:
    snapshot = [getattr(AdherenceSnapshot, name) for name in TALLY_COLUMNS]
    tallies: dict[int, dict[str, Any]] = {}
    # A team's patients as a subquery, not 2,000 bound parameters (which psycopg parses
    # one by one: half the request's time on a 2,000-patient panel).
    for pid, computed_at, *tally in db.execute(
        select(AdherenceSnapshot.patient_id, AdherenceSnapshot.computed_at, *snapshot).where(
            _among(AdherenceSnapshot.patient_id, scope), AdherenceSnapshot.days == days
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
