"""The overall adherence of many patients at once, counted in the database: what the care
team's panel computes when it has no fresh snapshot (``backend/services/panel``).

The numbers are exactly those of :func:`backend.services.adherence.adherence`'s ``overall``
tallies (the definitions are there; ``tests/test_adherence_counts.py`` compares the two on a
varied dataset, on both databases, with day tallies absent, partly present and stale). That
function walks every slot and every log in Python: for a 2,000-patient panel over 30 days,
360,000 logs fetched and matched one by one. Here:

1. **Settled days, stored** (``adherence_days``, :class:`backend.models.AdherenceDay`): a
   dosing day (``Occurrence.local_date``) whose every slot is more than ``MISSED_AFTER`` past
   changes only when something changes it, and each such change bumps the patient's
   ``adherence_version`` (``adherence_snapshots.invalidate``). One statement adds up, per
   patient, the current-version rows that lie wholly in the window (their first and last slot
   in it), and lists the days it need not count again (those, days with no slot, days wholly
   before the window).
2. **The rest, counted**: Python expands each distinct schedule once over the instants where
   the other days' slots can lie (a day's slots lie within its midnights in the zone it is
   computed in, within the patient's :func:`_margins`; a plain schedule's expansion is
   kept across calls, :func:`_free_slots`), and one statement joins the
   patients' live slot logs to those slots (by the medicine's expansion and the slot key,
   within ``_LOG_SLACK`` of the slot's instant, as the Python path matches them) and counts
   them per patient, day and whether the slot is in the window.
3. **Kept**: the counted days that are now settled and whole (every slot of them expanded)
   are stored with the version read before the logs were, so a change committed meanwhile
   leaves them stale, never wrong.

Known difference: two live logs of one slot (two phones logging the same dose at the same
instant, which the log's checks do not lock against) count twice here and once there.
"""

from __future__ import annotations

import gc
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    text,
    values,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from backend.db import UTCDateTime, among
from backend.models import AdherenceDay, Medication, Patient
from backend.reminders.timeline import MISSED_AFTER
from backend.schedule import Occurrence, Routine, Timing
from backend.schedule.medicines import (
    MedicineDates,
    dated_occurrences,
    expansion_key,
    local_day,
    occurrences,
)
from backend.schedule.timing import cached_timing
from backend.services.adherence import (
    _LOG_SLACK,
    dates_free_key,
    dates_free_limits,
    dates_free_pattern,
    tally_view,
    window_start,
)

log = logging.getLogger(__name__)

# Per (patient, day, slot in the window): logs taken on settled slots, logs on slots still
# open, of which not taken, taken late, skipped.
_COUNTS = """
WITH m AS {meds}, s AS {slots}
SELECT m.p, s.d, s.w,
       count(*) FILTER (WHERE s.due AND l.status = 'taken'),
       count(*) FILTER (WHERE NOT s.due),
       count(*) FILTER (WHERE NOT s.due AND l.status <> 'taken'),
       count(*) FILTER (WHERE l.status = 'taken' AND l.late),
       count(*) FILTER (WHERE l.status = 'skipped')
FROM m
JOIN dose_logs l ON l.medication_id = m.id
JOIN s ON s.e = m.e AND s.k = l.slot_key
WHERE l.undone_at IS NULL AND l.scheduled_at >= :lo AND l.scheduled_at < :hi AND {near}
GROUP BY m.p, s.d, s.w
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
    # materialized with each slot's bounds: computed once a slot, not twice a joined log
    # (~370,000 of them with nothing stored: 415 -> 380 ms in the server at load ~2.5)
    "slots": "MATERIALIZED (SELECT e, k, d, w, due, "
    "to_timestamp(t) - interval '2 days' AS lo, to_timestamp(t) + interval '2 days' AS hi "
    "FROM unnest({se}, {sk}, {sd}, {sw}, {sdue}, {st}) AS t(e, k, d, w, due, t))".format(
        se="CAST(string_to_array(:se, ',') AS integer[])",
        sk="string_to_array(:sk, chr(31))",
        sd="CAST(string_to_array(:sd, ',') AS integer[])",
        sw="CAST(string_to_array(:sw, ',') AS boolean[])",
        sdue="CAST(string_to_array(:sdue, ',') AS boolean[])",
        st="CAST(string_to_array(:st, ',') AS float8[])",
    ),
    # the slot's instant came as epoch seconds (whole minutes: exact in a float8)
    "near": "l.scheduled_at >= s.lo AND l.scheduled_at < s.hi",
}


def _sqlite_rows(param: str, *names: str) -> str:
    """A JSON array of arrays as a table (json_extract: SQLite 3.9+, unlike ``->>``)."""
    columns = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
    return f"MATERIALIZED (SELECT {columns} FROM json_each(:{param}))"


_SQLITE = {
    "meds": _sqlite_rows("meds", "id", "p", "e"),
    "slots": _sqlite_rows("slots", "e", "k", "d", "w", "due", "lo", "hi"),
    # the slot's instant less and plus the slack, as the column stores instants (text)
    "near": "l.scheduled_at >= s.lo AND l.scheduled_at < s.hi",
}
_SEP = chr(31)  # between slot keys: never in one (dates, times, codes)
# For this statement only (PostgreSQL): hash joins on the small lists instead of sorting
# the logs by their text slot key, in memory, without JIT compilation (~100 ms of it); and
# the counts grouped in a hash table: the planner expects 50 groups (the lists' rows are
# unknown to it) and sorted the ~30,000 matched logs first (EXPLAIN ANALYZE at load ~3.5:
# sort and group ~60 ms, hash aggregate ~23 ms).
_PG_SETTINGS = {"enable_mergejoin": "off", "enable_sort": "off", "work_mem": "64MB", "jit": "off"}
_TUNE = text(
    "SELECT " + ", ".join(f"set_config('{n}', '{v}', true)" for n, v in _PG_SETTINGS.items())
)
# A slot lies within its dosing day's midnights in the zone it is computed in; room to spare
# around the patient's own (what 27 hours for everyone was, less the zones apart).
_SLACK = timedelta(hours=1)
# A home zone is at most 26 hours from the patient's (UTC-12 to UTC+14).
_ZONES_APART = timedelta(hours=26)
# The days whose slots can lie in a window: from two before its first day to two after today.
_AROUND = 2


class _Expansions:
    """Each distinct schedule expanded once over a range of instants: its slots (for the
    statement) and, per dosing day (an ordinal), ``[settled in the window, open in the
    window, settled, open, first instant, last instant]``."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.ids: dict[tuple[Any, ...], int] = {}
        self.slots: list[tuple[int, str, int, bool, bool, datetime]] = []
        self.days: list[dict[int, list[Any]]] = []

    def add(self, key: tuple[Any, ...], found: Iterable[Any], start: datetime) -> int:
        e = self.ids[key] = len(self.days)
        days: dict[int, list[Any]] = {}
        for o in found:
            d = o.local_date.toordinal()
            w = o.at >= start
            settled = o.at + MISSED_AFTER <= self.at
            self.slots.append((e, o.slot_key, d, w, settled, o.at))
            c = days.get(d)
            if c is None:
                c = days[d] = [0, 0, 0, 0, o.at, o.at]
            c[0 if settled else 1] += w
            c[2 if settled else 3] += 1
            c[4] = min(c[4], o.at)
            c[5] = max(c[5], o.at)
        self.days.append(days)
        return e


@lru_cache(maxsize=16384)
def _span(zone: str, d: int, margin: timedelta) -> tuple[datetime, datetime]:
    """Where the slots of dosing day ``d`` can lie in ``zone``, for a patient whose slots
    lie at most ``margin`` past their day's midnights (the same for most patients in a zone:
    2,000 patients asked it 136,000 times, 0.6 s of a cold panel)."""
    midnight, next_midnight = local_day(date.fromordinal(d), zone)
    return midnight - margin, next_midnight + margin


def _margins(
    meds: Sequence[Any], people: dict[int, tuple[str, Routine, int]]
) -> dict[int, timedelta]:
    """Per patient, how far past their dosing days' midnights (in their zone) their slots can
    lie. A slot's dosing day is its local date in the zone its schedule is computed in
    (``Occurrence.local_date``: a bedtime after midnight is dated the next day), so that is
    :data:`_SLACK` for a patient whose medicines all follow them, and a day more for one with
    a medicine kept on a home zone of its own. Their days then settle, and stop being counted
    again, an hour after their last midnight instead of 27 hours (each cold panel counted
    about two days of logs more)."""
    away = {
        pid
        for _, pid, _, _, _, _, policy, home in meds
        if policy == "home" and home != people[pid][0]
    }
    return {pid: _SLACK + _ZONES_APART if pid in away else _SLACK for pid in people}


class _Plan:
    """A window's start, the days left to count, and the instants their slots lie in: one
    per zone and set of days left, shared by the patients who have them (most of a zone's)."""

    def __init__(
        self, zone: str, start: datetime, todo: tuple[int, ...], at: datetime, margin: timedelta
    ) -> None:
        self.zone = zone
        self.start = start
        self.todo = todo
        ranges: list[list[datetime]] = []
        for d in self.todo:
            lo, hi = _span(zone, d, margin)
            if lo >= at:
                break
            if ranges and lo <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], hi)
            else:
                ranges.append([lo, hi])
        # where the slots are looked for (up to ``at``), and the whole spans of those days
        # (what a plain schedule's expansion is kept for: :func:`_free_slots`)
        self.ranges = [(lo, min(hi, at)) for lo, hi in ranges]
        self.spans = [(lo, hi) for lo, hi in ranges]
        # the days every slot of which lies before ``at`` (all of them were expanded)
        self.whole = {d for d in todo if _span(zone, d, margin)[1] <= at}


def _plans(
    people: dict[int, tuple[str, Routine, int]],
    starts: dict[str, datetime],
    stored: dict[int, tuple[tuple[int, ...], _Done]],
    at: datetime,
    margins: dict[int, timedelta],
) -> dict[int, _Plan]:
    """Each patient's plan: the days from two before the window's first to two after today,
    less those stored (:func:`_stored`); their slots looked for within the patient's margin
    (:func:`_margins`)."""
    around = {}
    for zone, start in starts.items():
        first = start.astimezone(ZoneInfo(zone)).date().toordinal()
        today = at.astimezone(ZoneInfo(zone)).date().toordinal()
        around[zone] = range(first - _AROUND, today + _AROUND + 1)
    shared: dict[tuple[str, timedelta, tuple[int, ...]], _Plan] = {}
    seen: dict[tuple[str, timedelta, _Done], _Plan] = {}
    out = {}
    for pid, (zone, _, _) in people.items():
        done = stored[pid][1] if pid in stored else _NONE_DONE
        margin = margins[pid]
        plan = seen.get((zone, margin, done))
        if plan is None:
            todo = tuple(d for d in around[zone] if d not in done)
            plan = shared.get((zone, margin, todo))
            if plan is None:
                plan = shared[zone, margin, todo] = _Plan(zone, starts[zone], todo, at, margin)
            seen[zone, margin, done] = plan
        out[pid] = plan
    return out


def _patients(db: Session, ids: Sequence[int]) -> dict[int, tuple[str, Routine, int]]:
    rows = (
        db.connection()
        .execute(  # Core: the ORM's row processing is not needed
            select(
                Patient.id,
                Patient.time_zone,
                Patient.adherence_version,
                Patient.wake_time,
                Patient.breakfast_time,
                Patient.lunch_time,
                Patient.dinner_time,
                Patient.bed_time,
            ).where(among(db, Patient.id, ids))
        )
        .all()
    )  # one fetch (iterating fetched row by row: 2,000 fetchone calls)
    # one Routine per distinct routine, so that sharing keys can hold its identity: hashing
    # a routine (five times) was ~10 ms of a 2,000-patient panel's sharing keys
    routines: dict[tuple[Any, ...], Routine] = {}
    out = {}
    for pid, zone, version, *times in rows:
        key = tuple(times)
        routine = routines.get(key)
        if routine is None:
            routine = routines[key] = Routine(*times)
        out[pid] = (zone, routine, version)
    return out


@dataclass(frozen=True)
class _Done:
    """Days not to count again: bit ``d - first`` of ``bits`` for the ordinal ``d``."""

    first: int
    bits: int

    def __contains__(self, d: int) -> bool:
        return d >= self.first and bool(self.bits >> (d - self.first) & 1)


_NONE_DONE = _Done(0, 0)
_NO_DAYS: dict[int, list[Any]] = {}
# Days listed as bits of integers (an ordinal's offset from the first day read), 62 a column:
# PostgreSQL cast 60,000 dates to text for string_agg and Python parsed them back (~50 ms).
_BITS = 62


def _stored(
    db: Session, ids: Sequence[int], starts: dict[str, datetime], at: datetime
) -> dict[int, tuple[tuple[int, ...], _Done]]:
    """Per patient: the sums of the current stored days wholly in the window (scheduled,
    taken, late, skipped, days with doses, days covered), and the days not to count again."""
    day = AdherenceDay
    pg = db.get_bind().dialect.name == "postgresql"
    if pg:  # each zone's start joined once per patient, not a CASE evaluated per day row
        zones = values(column("zone", String), column("start", UTCDateTime()), name="zones")
        zones = zones.data(list(starts.items()))
        start: Any = zones.c.start
    else:
        start = case(
            {zone: literal(s, UTCDateTime()) for zone, s in starts.items()},
            value=Patient.time_zone,
        )
    usable = and_(day.first_at >= start, day.last_at <= literal(at - MISSED_AFTER, UTCDateTime()))
    done = or_(usable, day.first_at.is_(None), day.last_at < start)
    first = min(starts.values()).date() - timedelta(days=_AROUND + 1)
    last = at.date() + timedelta(days=_AROUND + 1)
    offset = (
        day.day - literal(first)
        if pg
        else cast(func.julianday(day.day) - func.julianday(literal(first.isoformat())), Integer)
    )
    masks = [
        func.sum(
            case(
                (
                    and_(done, offset >= lo, offset < lo + _BITS),
                    literal(1, BigInteger).op("<<")(offset - lo),
                ),
                else_=0,
            )
        )
        for lo in range(0, (last - first).days + 1, _BITS)
    ]
    sums = [
        *(
            func.sum(case((usable, column), else_=0))
            for column in (day.scheduled, day.taken, day.late, day.skipped)
        ),
        func.sum(case((and_(usable, day.scheduled > 0), 1), else_=0)),
        func.sum(case((and_(usable, day.scheduled > 0, day.covered), 1), else_=0)),
        *masks,
    ]
    current = and_(
        day.patient_id == Patient.id,
        day.version == Patient.adherence_version,
        day.day >= first,
        day.day <= last,
    )
    if pg:
        # Each patient's ~35 rows summed by an index range scan of its own (LATERAL): one
        # GROUP BY over 60,000 rows sorted them first (on disk at the default work_mem),
        # 175 -> 57 ms at load 2.8.
        per_patient = select(*sums).where(current).lateral()
        stmt = (
            select(Patient.id, *per_patient.c)
            .join(zones, zones.c.zone == Patient.time_zone)
            .join(per_patient, literal(True))
        )
    else:
        stmt = select(Patient.id, *sums).join(day, current).group_by(Patient.id)
    out = {}
    for pid, *found in db.connection().execute(stmt.where(among(db, Patient.id, ids))).all():
        bits = 0
        for i, mask in enumerate(found[6:]):
            bits |= int(mask or 0) << (i * _BITS)
        out[pid] = (tuple(int(n or 0) for n in found[:6]), _Done(first.toordinal(), bits))
    return out


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
    return list(db.connection().execute(stmt).all())


def _expand(
    meds: Sequence[Any],
    people: dict[int, tuple[str, Routine, int]],
    plans: dict[int, _Plan],
    at: datetime,
    book: _Expansions,
) -> list[tuple[int, int, int]]:
    """(medicine, patient, expansion) of every medicine with a schedule over each range of
    its patient's plan, expanding each distinct one once: by :func:`dates_free_key` as the
    Python path does, else by the schedule engine's ``expansion_key`` of the medicine itself
    (with the window's start, which says which slots are in it). Parsing, patterns and limits
    are worked out once per distinct schedule text, routine and zone."""
    timings: dict[str | None, Timing | None] = {}
    patterns: dict[tuple[str, Routine], tuple[Any, ...] | None] = {}
    limits: dict[tuple[str, datetime, datetime], tuple[date, date]] = {}
    # (schedule, routine, zone, policy, home zone, plan) -> the limits its medicines' dates
    # must pass to share the expansions of each range, and those: most of 8,000 medicines
    # then cost one look-up, not the keys of every range
    shared: dict[tuple[Any, ...], tuple[date, date, list[int]]] = {}
    # (routine, zone, plan) as a small number per patient: a routine hashes in Python
    alike: dict[tuple[int, str, _Plan], int] = {}
    kinds = {  # routines by identity: one object per distinct routine (_patients)
        pid: alike.setdefault((id(r), z, plans[pid]), len(alike))
        for pid, (z, r, _) in people.items()
    }
    out: list[tuple[int, int, int]] = []
    add = out.append
    for row in meds:
        # unpacked once: a Row's attribute look-ups were most of the loop's ~6 us a medicine
        mid, pid, text_, start_date, end_date, _, policy, home = row
        if text_ in timings:
            timing = timings[text_]
        else:
            data = json.loads(text_) if text_ is not None else None
            timing = timings[text_] = cached_timing(data) if data else None
        if timing is None:  # JSON null or empty: no schedule
            continue
        like = (text_, policy, home, kinds[pid])
        found = shared.get(like)
        if (
            found is not None
            and start_date <= found[0]
            and (end_date is None or end_date >= found[1])
        ):
            for e in found[2]:
                add((mid, pid, e))
            continue
        zone, routine, _ = people[pid]
        plan = plans[pid]
        if (row.timing, routine) not in patterns:
            patterns[row.timing, routine] = dates_free_pattern(timing, routine)
        free_everywhere = patterns[row.timing, routine] is not None
        mine = []
        for (lo, hi), (_, top) in zip(plan.ranges, plan.spans, strict=True):
            if (zone, lo, top) not in limits:
                limits[zone, lo, top] = dates_free_limits(zone, lo, top)
            free = dates_free_key(
                patterns[row.timing, routine],
                limits[zone, lo, top],
                row.start_date,
                row.end_date,
                row.tz_policy,
                row.home_time_zone,
                zone,
                lo,
                top,
            )
            if free is not None:
                key: tuple[Any, ...] = (free, plan.start)
                known = book.ids.get(key)
                if known is None:
                    dates = MedicineDates(
                        row.start_date,
                        row.end_date,
                        row.created_at,
                        row.tz_policy,
                        row.home_time_zone,
                    )
                    found_slots = [
                        o
                        for o in _free_slots(free, timing, routine, zone, dates, lo, top)
                        if o.at < hi
                    ]
                    known = book.add(key, found_slots, plan.start)
            else:
                med, patient = _records(row, zone, routine)
                key = ("own", *expansion_key(med, patient), lo, hi, plan.start)
                known = book.ids.get(key)
                if known is None:
                    known = book.add(key, occurrences(med, patient, lo, hi), plan.start)
            free_everywhere = free_everywhere and free is not None
            mine.append(known)
        if free_everywhere and found is None:
            passing = [limits[zone, lo, top] for lo, top in plan.spans]
            shared[like] = (
                min((first for first, _ in passing), default=date.max),
                max((last for _, last in passing), default=date.min),
                mine,
            )
        out.extend((mid, pid, e) for e in mine)
    return out


# Plain schedules' slots by their dates-free key (pattern, zone, range): a pure function of
# those, as the zones' day spans (_span) and parsed schedules (cached_timing) are, so kept
# across calls; a range is a few days' whole spans (not cut at the instant asked), so its
# key holds until a day settles. A 2,000-patient panel of 64 routines in 7 zones has ~300;
# expanding them was ~40 ms of its ~110 ms of CPU with the settled days stored (load 3).
_FREE: dict[tuple[Any, ...], list[Occurrence]] = {}
_FREE_MAX = 8192  # then emptied: the ranges move on each day


def _free_slots(
    key: tuple[Any, ...],
    timing: Timing,
    routine: Routine,
    zone: str,
    dates: MedicineDates,
    lo: datetime,
    hi: datetime,
) -> list[Occurrence]:
    """The slots of a plain schedule in [lo, hi) (``key`` its :func:`dates_free_key`)."""
    found = _FREE.get(key)
    if found is None:
        if len(_FREE) >= _FREE_MAX:
            _FREE.clear()
        found = _FREE[key] = dated_occurrences(timing, routine, zone, dates, lo, hi)
    return found


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


def _as_stored(t: datetime) -> str:
    """An instant as SQLite's column holds it (naive UTC text, to the microsecond)."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _counts(
    db: Session, meds: list[tuple[int, int, int]], book: _Expansions, lo: datetime, hi: datetime
) -> list[Any]:
    """Run :data:`_COUNTS`."""
    params: dict[str, Any] = {"lo": lo, "hi": hi}
    if db.get_bind().dialect.name != "postgresql":
        params.update(
            meds=json.dumps(meds),
            slots=json.dumps(
                [
                    (e, k, d, w, due, _as_stored(t - _LOG_SLACK), _as_stored(t + _LOG_SLACK))
                    for e, k, d, w, due, t in book.slots
                ]
            ),
        )
        return list(db.execute(_statement(_SQLITE), params).all())
    mi, mp, me = zip(*meds, strict=True)
    se, sk, sd, sw, sdue, st = zip(*book.slots, strict=True)
    params.update(
        mi=_join(mi),
        mp=_join(mp),
        me=_join(me),
        se=_join(se),
        sk=_join(sk, _SEP),
        sd=_join(sd),
        sw=",".join("t" if w else "f" for w in sw),
        sdue=",".join("t" if settled else "f" for settled in sdue),
        st=_join(int(t.timestamp()) for t in st),
    )
    return list(db.connection().execute(_statement(_PG), params).all())


@contextmanager
def _tuned(db: Session) -> Iterator[None]:
    """PostgreSQL: the computation's reads under :data:`_PG_SETTINGS`, set in one statement
    in a savepoint rolled back after them (the settings end with it; the caller's transaction
    keeps its own). The stored days' sums run under them too: JIT compiled their aggregate
    for ~13 ms of a ~60 ms statement (EXPLAIN ANALYZE, load ~2)."""
    if db.get_bind().dialect.name != "postgresql":
        yield
        return
    savepoint = db.begin_nested()
    try:
        db.connection().execute(_TUNE)
        yield
    finally:
        savepoint.rollback()


def overall_tallies(
    db: Session, patient_ids: Sequence[int], days: int, at: datetime, keep: bool = True
) -> dict[int, dict[str, Any]]:
    """Each patient's overall tally over the last ``days`` local days at ``at``, as
    ``Tally.as_dict()`` gives it; with ``keep``, the days it counted that are now settled
    are stored in the caller's transaction (for the next time)."""
    with _collector_paused():
        return _overall_tallies(db, patient_ids, days, at, keep)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the computation: its tens of thousands of
    rows, tuples and lists (freed by reference counting, no cycles) set off a full collection
    of the whole process's heap (~210,000 objects in the API) in each cold panel, ~0.2 s of
    its 0.5 s of CPU at load 3. Left off if something else turned it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _overall_tallies(
    db: Session, patient_ids: Sequence[int], days: int, at: datetime, keep: bool
) -> dict[int, dict[str, Any]]:
    if not patient_ids:
        return {}
    with _tuned(db):
        found = _read(db, patient_ids, days, at)
    if found is None:
        return {}
    people, plans, stored, slot_days_of, logged = found
    out = {}
    keeping: list[_DayRow] = []
    none = (0, 0, 0, 0, 0)
    for pid, (_, _, version) in people.items():
        plan = plans[pid]
        sums = list(stored[pid][0]) if pid in stored else [0] * 6
        pending = 0
        slot_days = slot_days_of.get(pid, _NO_DAYS)
        for d in plan.todo:
            c = slot_days.get(d)
            whole = d in plan.whole
            if c is None:
                if whole:
                    keeping.append(_row(pid, d, version, 0, 0, 0, 0, False, None, None))
                continue
            due_w, open_w, due, still_open, first, last = c
            taken_w, logged_open, untaken_open, late_w, skipped_w = logged.get((pid, d, True), none)
            sums[0] += due_w + logged_open
            sums[1] += taken_w + logged_open - untaken_open
            sums[2] += late_w
            sums[3] += skipped_w
            pending += open_w - logged_open
            if due_w + logged_open:
                sums[4] += 1
                sums[5] += taken_w == due_w and not untaken_open
            if whole and not still_open:
                taken, _, _, late, skipped = logged.get((pid, d, False), none)
                taken += taken_w
                keeping.append(
                    _row(
                        pid,
                        d,
                        version,
                        due,
                        taken,
                        late + late_w,
                        skipped + skipped_w,
                        taken == due,
                        first,
                        last,
                    )
                )
        scheduled, taken, late, skipped, with_doses, covered = sums
        out[pid] = tally_view(
            scheduled=scheduled,
            taken=taken,
            late=late,
            skipped=skipped,
            pending=pending,
            days_with_doses=with_doses,
            days_covered=covered,
        )
    if keep and keeping:
        _keep(db, keeping)
    return out


def _read(db: Session, patient_ids: Sequence[int], days: int, at: datetime) -> Any:
    """What :func:`_overall_tallies` adds up: the patients, their plans and stored sums, each
    one's expansions and their days, and the counted logs; None when no patient is found."""
    people = _patients(db, patient_ids)  # the versions first
    if not people:
        return None
    zones = {zone for zone, _, _ in people.values()}
    starts = {zone: window_start(zone, days, at) for zone in zones}
    rows = _medicines(db, patient_ids)
    stored = _stored(db, list(people), starts, at)
    plans = _plans(people, starts, stored, at, _margins(rows, people))
    book = _Expansions(at)
    meds = _expand(rows, people, plans, at, book)
    own: dict[int, list[int]] = defaultdict(list)
    for _, pid, e in meds:
        own[pid].append(e)
    # Per distinct set of expansions (patients on the same schedules share it): its days.
    sets: dict[tuple[int, ...], dict[int, list[Any]]] = {}
    slot_days_of: dict[int, dict[int, list[Any]]] = {}
    for pid, expansions in own.items():
        signature = tuple(sorted(expansions))
        found = sets.get(signature)
        if found is None:
            found = sets[signature] = _add_days(book.days[e] for e in signature)
        slot_days_of[pid] = found
    logged: dict[tuple[int, int, bool], tuple[int, ...]] = {}
    if meds and book.slots:  # no slot in the window: no log can count
        lo = min(lo for plan in plans.values() for lo, _ in plan.ranges)
        for p, d, w, *counts in _counts(db, meds, book, lo - _LOG_SLACK, at + _LOG_SLACK):
            logged[p, d, bool(w)] = tuple(counts)
    return people, plans, stored, slot_days_of, logged


def _add_days(expansions: Iterable[dict[int, list[Any]]]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for days in expansions:
        for d, c in days.items():
            mine = out.get(d)
            if mine is None:
                out[d] = list(c)
            else:
                for i in range(4):
                    mine[i] += c[i]
                mine[4] = min(mine[4], c[4])
                mine[5] = max(mine[5], c[5])
    return out


def _row(
    pid: int,
    d: int,
    version: int,
    scheduled: int,
    taken: int,
    late: int,
    skipped: int,
    covered: bool,
    first: datetime | None,
    last: datetime | None,
) -> _DayRow:
    covered = covered and scheduled > 0
    return (pid, d, version, scheduled, taken, late, skipped, covered, first, last)


# A day to store: patient, dosing day (an ordinal), version, scheduled, taken, late,
# skipped, covered, first and last slot.
_DayRow = tuple[int, int, int, int, int, int, int, bool, datetime | None, datetime | None]
_DAY_COLUMNS = (
    "patient_id",
    "day",
    "version",
    "scheduled",
    "taken",
    "late",
    "skipped",
    "covered",
    "first_at",
    "last_at",
)
# PostgreSQL: a first cold panel stores ~66,000 days; as an executemany, psycopg adapted their
# 660,000 parameters one by one in Python (~2.5 s). One comma-separated text per column,
# split into arrays by the server; the days as ordinals and the instants as microseconds
# since the epoch (integers: their ISO texts cost ~120 ms of parsing in the server and
# ~100 ms of formatting here, for 60,000 days at load ~3).
_KEEP_PG = text(
    "INSERT INTO adherence_days ({names}) "
    "SELECT p, date '0001-01-01' + (d - 1), v, s, t, l, k, c, "
    "timestamptz 'epoch' + f * interval '1 microsecond', "
    "timestamptz 'epoch' + z * interval '1 microsecond' "
    "FROM unnest({arrays}) AS u(p, d, v, s, t, l, k, c, f, z) "
    "ON CONFLICT (patient_id, day) DO UPDATE SET {updates} "
    "WHERE adherence_days.version < excluded.version".format(
        names=", ".join(_DAY_COLUMNS),
        arrays=", ".join(
            f"CAST(string_to_array(:{c}, ',', '') AS {t}[])"
            for c, t in zip(
                _DAY_COLUMNS,
                (*("integer",) * 7, "boolean", "bigint", "bigint"),
                strict=True,
            )
        ),
        updates=", ".join(f"{c} = excluded.{c}" for c in _DAY_COLUMNS[2:]),
    )
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


_INSERT_DAYS = sqlite.insert(AdherenceDay)
# SQLite: the same upsert, row by row (no arrays to unnest).
_KEEP_SQLITE = _INSERT_DAYS.on_conflict_do_update(
    index_elements=["patient_id", "day"],
    set_={name: _INSERT_DAYS.excluded[name] for name in _DAY_COLUMNS[2:]},
    where=AdherenceDay.version < _INSERT_DAYS.excluded.version,
)


def _keep(db: Session, rows: list[_DayRow]) -> None:
    """Store settled days (a newer version than a stored row's replaces it; an older one,
    from a computation that read before a change, does not). A busy database costs the
    rows, not the request."""
    rows.sort(key=lambda r: (r[0], r[1]))  # one lock order for two writers
    try:
        with db.begin_nested():
            if db.get_bind().dialect.name == "postgresql":
                db.connection().execute(_KEEP_PG, _day_arrays(rows))
            else:
                db.execute(
                    _KEEP_SQLITE,
                    [
                        dict(zip(_DAY_COLUMNS, (pid, date.fromordinal(d), *rest), strict=True))
                        for pid, d, *rest in rows
                    ],
                )
    except OperationalError as exc:
        log.warning("adherence days not stored (%d rows): %s", len(rows), exc.orig)


def _day_arrays(rows: list[_DayRow]) -> dict[str, str]:
    """The rows as :data:`_KEEP_PG` takes them, one text per column (an empty item is NULL)."""
    columns = list(zip(*rows, strict=True))
    out = {name: _join(items) for name, items in zip(_DAY_COLUMNS[:7], columns, strict=False)}
    out["covered"] = ",".join("t" if covered else "f" for covered in columns[7])
    for name, items in zip(_DAY_COLUMNS[8:], columns[8:], strict=True):
        out[name] = ",".join("" if t is None else str((t - _EPOCH) // _MICROSECOND) for t in items)
    return out
