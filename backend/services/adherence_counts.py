"""The overall adherence of many patients at once, counted in the database: what the care
team's panel computes when it has no fresh snapshot (``backend/services/panel``).

The numbers are exactly those of :func:`backend.services.adherence.adherence`'s ``overall``
tallies (the definitions are there; ``tests/test_adherence_counts.py`` compares the two on a
varied dataset, on both databases). That function walks every slot and every log in Python:
for a 2,000-patient panel over 30 days, 360,000 logs fetched and matched one by one. Here:

1. Python expands each distinct schedule of the window once (the schedule engine stays the
   one source of slots): its slots' keys, local days, and whether each is settled by the
   clock (more than ``MISSED_AFTER`` past); and adds up, per patient, the slots settled by
   the clock on each local day and those still open.
2. One statement joins the patients' live slot logs to those slots (by the medicine's
   expansion and the slot key, the way the Python path matches them), counts them per
   patient and local day, compares each day with the slots it settled (a day is covered
   when they were all taken) and returns one row of sums per patient.

Known difference: two live logs of one slot (two phones logging the same dose at the same
instant, which the log's checks do not lock against) count twice here and once there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, cast, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from backend.db import UTCDateTime, among
from backend.models import Medication, Patient
from backend.reminders.timeline import MISSED_AFTER
from backend.schedule import Routine, Timing
from backend.schedule.medicines import expansion_key, occurrences
from backend.schedule.timing import cached_timing
from backend.services.adherence import (
    _LOG_SLACK,
    dates_free_key,
    dates_free_limits,
    dates_free_pattern,
    tally_view,
    window_start,
)

# Per patient: logs on slots still open, taken, late, skipped, days settled only by a log,
# days covered. ``{due}`` is the patient's slots settled by the clock that day.
_COUNTS = """
WITH m AS {meds}, s AS {slots}, pd AS {people},
g AS (
    SELECT m.p, s.d,
           count(*) FILTER (WHERE s.due AND l.status = 'taken') AS taken_due,
           count(*) FILTER (WHERE NOT s.due) AS logged_open,
           count(*) FILTER (WHERE NOT s.due AND l.status <> 'taken') AS untaken_open,
           count(*) FILTER (WHERE l.status = 'taken' AND l.late) AS late,
           count(*) FILTER (WHERE l.status = 'skipped') AS skipped
    FROM m
    JOIN dose_logs l ON l.medication_id = m.id
    JOIN s ON s.e = m.e AND s.k = l.slot_key
    WHERE l.undone_at IS NULL AND l.scheduled_at >= :lo AND l.scheduled_at < :hi
    GROUP BY m.p, s.d
),
gd AS (SELECT g.*, {due} AS due FROM g JOIN pd ON pd.p = g.p)
SELECT p, CAST(sum(logged_open) AS integer),
       CAST(sum(taken_due + logged_open - untaken_open) AS integer),
       CAST(sum(late) AS integer), CAST(sum(skipped) AS integer),
       count(*) FILTER (WHERE due = 0 AND logged_open > 0),
       count(*) FILTER (WHERE (due > 0 OR logged_open > 0) AND taken_due = due
                        AND untaken_open = 0)
FROM gd GROUP BY p
"""
# PostgreSQL: the lists travel as comma-separated text (psycopg adapts a Python list of
# 10,000 values element by element, in Python), split into arrays that unnest() estimates
# from their length. SQLite: JSON, materialized so that it can index the slots for the join.
_PG = {
    "meds": "(SELECT * FROM unnest({mi}, {mp}, {me}) AS t(id, p, e))".format(
        mi="CAST(string_to_array(:mi, ',') AS integer[])",
        mp="CAST(string_to_array(:mp, ',') AS integer[])",
        me="CAST(string_to_array(:me, ',') AS integer[])",
    ),
    "slots": "(SELECT * FROM unnest({se}, {sk}, {sd}, {sdue}) AS t(e, k, d, due))".format(
        se="CAST(string_to_array(:se, ',') AS integer[])",
        sk="string_to_array(:sk, chr(31))",
        sd="CAST(string_to_array(:sd, ',') AS integer[])",
        sdue="CAST(string_to_array(:sdue, ',') AS boolean[])",
    ),
    "people": "(SELECT * FROM unnest({pp}, {po}) AS t(p, o))".format(
        pp="CAST(string_to_array(:pp, ',') AS integer[])",
        po="CAST(string_to_array(:po, ',') AS integer[])",
    ),
    "due": "(CAST(string_to_array(:due, ',') AS integer[]))[pd.o + g.d + 1]",
}


def _sqlite_rows(param: str, *names: str) -> str:
    """A JSON array of arrays as a table (json_extract: SQLite 3.9+, unlike ``->>``)."""
    columns = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
    return f"MATERIALIZED (SELECT {columns} FROM json_each(:{param}))"


_SQLITE = {
    "meds": _sqlite_rows("meds", "id", "p", "e"),
    "slots": _sqlite_rows("slots", "e", "k", "d", "due"),
    "people": _sqlite_rows("people", "p", "o"),
    "due": "json_extract(:due, '$[' || (pd.o + g.d) || ']')",
}
_SEP = chr(31)  # between slot keys: never in one (dates, times, codes)
# For this statement only (PostgreSQL): hash joins on the small lists instead of sorting
# 360,000 logs by their text slot key, in memory, without JIT compilation (~100 ms of it).
_PG_SETTINGS = {"enable_mergejoin": "off", "work_mem": "64MB", "jit": "off"}


class _Expansions:
    """Each distinct schedule of the window expanded once: its slots (for the statement),
    and its slots settled by the clock per local day (a list indexed by days from ``base``)
    with the number still open (for each patient's sums)."""

    def __init__(self, at: datetime, base: date, length: int) -> None:
        self.at = at
        self.base = base
        self.length = length
        self.ids: dict[tuple[Any, ...], int] = {}
        self.slots: list[tuple[int, str, int, bool]] = []  # expansion, key, day, settled
        self.due: list[list[int]] = []
        self.open: list[int] = []

    def add(self, key: tuple[Any, ...], found: Iterable[Any]) -> int:
        e = self.ids[key] = len(self.due)
        due = [0] * self.length
        still_open = 0
        for o in found:
            day = (o.local_date - self.base).days
            settled = o.at + MISSED_AFTER <= self.at
            self.slots.append((e, o.slot_key, day, settled))
            if settled:
                due[day] += 1
            else:
                still_open += 1
        self.due.append(due)
        self.open.append(still_open)
        return e


def _patients(db: Session, ids: Sequence[int]) -> dict[int, tuple[str, Routine]]:
    rows = db.execute(
        select(
            Patient.id,
            Patient.time_zone,
            Patient.wake_time,
            Patient.breakfast_time,
            Patient.lunch_time,
            Patient.dinner_time,
            Patient.bed_time,
        ).where(among(db, Patient.id, ids))
    )
    return {pid: (zone, Routine(*times)) for pid, zone, *times in rows}


def _medicines(db: Session, ids: Sequence[int]) -> list[Any]:
    """The scheduled medicines as plain rows (the schedule as its JSON text: parsed once per
    distinct text, not once per row)."""
    stmt = select(
        Medication.id,
        Medication.patient_id,
        cast(Medication.timing, Text).label("timing"),
        Medication.start_date,
        Medication.end_date,
        Medication.created_at,
        Medication.tz_policy,
        Medication.home_time_zone,
    ).where(
        among(db, Medication.patient_id, ids),
        Medication.status == "active",
        Medication.as_needed.is_(False),
    )
    # .all(): one fetchall (iterating a result fetches row by row, 15 us each on psycopg)
    return list(db.execute(stmt).all())


def _expand(
    meds: Sequence[Any],
    people: dict[int, tuple[str, Routine]],
    starts: dict[int, datetime],
    at: datetime,
    book: _Expansions,
) -> list[tuple[int, int, int]]:
    """(medicine, patient, expansion) of every medicine with a schedule, expanding each
    distinct one once: by :func:`dates_free_key` as the Python path does, else by the
    schedule engine's ``expansion_key`` of the medicine itself. Parsing, patterns and limits
    are worked out once per distinct schedule text, routine and patient."""
    timings: dict[str | None, Timing | None] = {}
    patterns: dict[tuple[str, Routine], tuple[Any, ...] | None] = {}
    limits: dict[int, tuple[date, date]] = {}
    out = []
    for row in meds:
        if row.timing not in timings:
            data = json.loads(row.timing) if row.timing is not None else None
            timings[row.timing] = cached_timing(data) if data else None
        timing = timings[row.timing]
        if timing is None:  # JSON null or empty: no schedule
            continue
        pid = row.patient_id
        zone, routine = people[pid]
        start = starts[pid]
        if (row.timing, routine) not in patterns:
            patterns[row.timing, routine] = dates_free_pattern(timing, routine)
        if pid not in limits:
            limits[pid] = dates_free_limits(zone, start, at)
        key = dates_free_key(
            patterns[row.timing, routine],
            limits[pid],
            row.start_date,
            row.end_date,
            row.tz_policy,
            row.home_time_zone,
            zone,
            start,
            at,
        )
        e = book.ids.get(key) if key is not None else None
        if e is None:
            med, patient = _records(row, zone, routine)
            if key is None:
                key = ("own", *expansion_key(med, patient), start)
            e = book.ids.get(key)
            if e is None:
                e = book.add(key, occurrences(med, patient, start, at))
        out.append((row.id, pid, e))
    return out


def _records(row: Any, zone: str, routine: Routine) -> tuple[Medication, Patient]:
    """Unsaved records carrying what the schedule engine reads (rarely: once per distinct
    schedule)."""
    med = Medication(
        id=row.id,
        patient_id=row.patient_id,
        timing=json.loads(row.timing),
        status="active",
        start_date=row.start_date,
        end_date=row.end_date,
        created_at=row.created_at,
        tz_policy=row.tz_policy,
        home_time_zone=row.home_time_zone,
    )
    patient = Patient(
        id=row.patient_id,
        time_zone=zone,
        wake_time=routine.wake,
        breakfast_time=routine.breakfast,
        lunch_time=routine.lunch,
        dinner_time=routine.dinner,
        bed_time=routine.bed,
    )
    return med, patient


def _statement(parts: dict[str, str]) -> TextClause:
    # the window's instants as the column stores them (naive UTC on SQLite)
    window = (bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime()))
    return text(_COUNTS.format(**parts)).bindparams(*window)


def _join(values: Iterable[Any], sep: str = ",") -> str:
    return sep.join(map(str, values))


def _counts(
    db: Session,
    meds: list[tuple[int, int, int]],
    book: _Expansions,
    people: dict[int, int],
    due: list[int],
    lo: datetime,
    hi: datetime,
) -> list[Any]:
    """Run :data:`_COUNTS` (``people``: patient -> where their day vector starts in ``due``)."""
    params: dict[str, Any] = {"lo": lo, "hi": hi}
    if db.get_bind().dialect.name != "postgresql":
        params.update(
            meds=json.dumps(meds),
            slots=json.dumps(book.slots),
            people=json.dumps(list(people.items())),
            due=json.dumps(due),
        )
        return list(db.execute(_statement(_SQLITE), params).all())
    mi, mp, me = zip(*meds, strict=True)
    se, sk, sd, sdue = zip(*book.slots, strict=True)
    params.update(
        mi=_join(mi),
        mp=_join(mp),
        me=_join(me),
        se=_join(se),
        sk=_join(sk, _SEP),
        sd=_join(sd),
        sdue=",".join("t" if settled else "f" for settled in sdue),
        pp=_join(people),
        po=_join(people.values()),
        due=_join(due),
    )
    savepoint = db.begin_nested()  # rolled back below: the settings end with it
    try:
        for name, value in _PG_SETTINGS.items():
            db.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
        return list(db.execute(_statement(_PG), params).all())
    finally:
        savepoint.rollback()


def overall_tallies(
    db: Session, patient_ids: Sequence[int], days: int, at: datetime
) -> dict[int, dict[str, Any]]:
    """Each patient's overall tally over the last ``days`` local days at ``at``, as
    ``Tally.as_dict()`` gives it."""
    people = _patients(db, patient_ids) if patient_ids else {}
    if not people:
        return {}
    starts = {pid: window_start(zone, days, at) for pid, (zone, _) in people.items()}
    first = min(starts.values())
    # local days from two before the earliest window start (a home zone's date can be up to
    # two days off the patient's) to two after today
    base = first.date() - timedelta(days=2)
    book = _Expansions(at, base, (at.date() - base).days + 3)
    meds = _expand(_medicines(db, patient_ids), people, starts, at, book)
    own: dict[int, list[int]] = defaultdict(list)
    for _, pid, e in meds:
        own[pid].append(e)
    # Per distinct set of expansions (patients on the same schedules share it): where its
    # settled slots per day start in `due`, and its (settled, open, days settled) sums.
    sets: dict[tuple[int, ...], tuple[int, tuple[int, int, int]]] = {}
    due: list[int] = []
    for expansions in own.values():
        signature = tuple(sorted(expansions))
        if signature not in sets:
            per_day = [sum(day) for day in zip(*(book.due[e] for e in signature), strict=True)]
            still_open = sum(book.open[e] for e in signature)
            sets[signature] = (len(due), (sum(per_day), still_open, sum(map(bool, per_day))))
            due += per_day
    placed = {pid: sets[tuple(sorted(expansions))] for pid, expansions in own.items()}
    logged = {
        row[0]: row[1:]
        for row in (
            _counts(
                db,
                meds,
                book,
                {pid: offset for pid, (offset, _) in placed.items()},
                due,
                first - _LOG_SLACK,
                at + _LOG_SLACK,
            )
            if meds and book.slots  # no slot in the window: no log can count
            else ()
        )
    }
    out = {}
    for pid in people:
        settled, still_open, days_settled = placed[pid][1] if pid in placed else (0, 0, 0)
        logged_open, taken, late, skipped, log_days, covered = logged.get(pid, (0,) * 6)
        out[pid] = tally_view(
            scheduled=settled + logged_open,
            taken=taken,
            late=late,
            skipped=skipped,
            pending=still_open - logged_open,
            days_with_doses=days_settled + log_days,
            days_covered=covered,
        )
    return out
