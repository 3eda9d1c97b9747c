"""The outbox: one row per "tell user U about X at T", and one delivery row per device try.

A reminder moves through these states (only the dispatcher moves it past ``pending``)::

    pending --claim--> claimed --> sent | pending (transient error, later) | failed
       |                  \\--> expired (past not_after) | cancelled (no longer matters)
       +--> cancelled (cancel(): dose logged, appointment moved, access revoked)
       +--> expired (the sweep: past not_after before anyone claimed it)

``dedupe_key`` is unique, so enqueueing the same thing twice creates one row (planning twice
creates nothing twice). ``cancel`` only touches ``pending`` rows: a reminder already claimed
is in flight and cannot be called back. A row cancelled by a re-plan (``replanned``) goes
back to ``pending`` when the planner plans its key again; ``recancel`` turns another reason
into that one when its cause went away (a dose log undone).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
from sqlalchemy import (
    and_,
    func,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.clock import now
from backend.models.outbox import FINAL_STATES, REMINDER_KINDS, STATES, Delivery, Reminder

REPLANNED = "replanned"  # cancelled by a re-plan: planning its key again revives the row

__all__ = [
    "FINAL_STATES",
    "REMINDER_KINDS",
    "REPLANNED",
    "STATES",
    "Delivery",
    "Reminder",
]


def _insert(db: Session) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(Reminder)


def enqueue(
    db: Session,
    *,
    dedupe_key: str,
    kind: str,
    user_id: int,
    due_at: datetime,
    not_after: datetime,
    patient_id: int | None = None,
    subject: Mapping[str, Any] | None = None,
) -> Reminder | None:
    """Add a reminder unless one with ``dedupe_key`` exists; returns the new row or None.

    Runs in the caller's transaction, so a planner can enqueue together with the change
    that caused it. The INSERT ignores a conflicting key instead of failing, so two
    planners racing on the same key both succeed and one row results.
    """
    if kind not in REMINDER_KINDS:
        raise ValueError(f"unknown reminder kind {kind!r}")
    if not_after < due_at:
        raise ValueError("not_after is before due_at")
    stmt = (
        _insert(db)
        .values(
            dedupe_key=dedupe_key,
            kind=kind,
            user_id=user_id,
            patient_id=patient_id,
            subject=dict(subject or {}),
            due_at=due_at,
            not_after=not_after,
            state="pending",
            attempts=0,
            next_attempt_at=due_at,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Reminder.id)
    )
    new_id = db.execute(stmt).scalar_one_or_none()
    return None if new_id is None else db.get(Reminder, new_id)


def _matching(
    *,
    ids: Iterable[int] | None = None,
    user_id: int | None = None,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    dedupe_prefix: str | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE terms of the filters :func:`cancel` and :func:`recancel` take (each given
    one must match); at least one is required."""
    where: list[ColumnElement[bool]] = []
    if ids is not None:
        where.append(Reminder.id.in_(list(ids)))
    if user_id is not None:
        where.append(Reminder.user_id == user_id)
    if patient_id is not None:
        where.append(Reminder.patient_id == patient_id)
    if kinds is not None:
        where.append(Reminder.kind.in_(list(kinds)))
    if dedupe_prefix is not None:
        escaped = dedupe_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Reminder.dedupe_key.like(escaped + "%", escape="\\"))
    for key, value in (subject or {}).items():
        field = Reminder.subject[key]
        where.append(
            field.as_integer() == value if isinstance(value, int) else field.as_string() == value
        )
    if due_from is not None:
        where.append(Reminder.due_at >= due_from)
    if not where:
        raise ValueError("cancel() needs at least one filter")
    return where


def cancel(
    db: Session,
    *,
    reason: str,
    ids: Iterable[int] | None = None,
    user_id: int | None = None,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    dedupe_prefix: str | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> int:
    """Cancel the still-pending reminders matching every given filter; returns how many.

    A conditional UPDATE (``state = 'pending'``): a row a dispatcher has already claimed is
    left alone, it is in flight. At least one filter is required.
    """
    where = _matching(
        ids=ids,
        user_id=user_id,
        patient_id=patient_id,
        kinds=kinds,
        dedupe_prefix=dedupe_prefix,
        subject=subject,
        due_from=due_from,
    )
    stmt = (
        update(Reminder)
        .where(Reminder.state == "pending", and_(*where))
        .values(state="cancelled", cancelled_reason=reason[:60], lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], db.execute(stmt))
    return result.rowcount or 0


def recancel(
    db: Session,
    *,
    was: str,
    reason: str,
    patient_id: int | None = None,
    kinds: Iterable[str] | None = None,
    subject: Mapping[str, int | str] | None = None,
    due_from: datetime | None = None,
) -> int:
    """Give the rows cancelled for ``was`` and matching every filter the reason ``reason``
    instead; returns how many. A conditional UPDATE (``state = 'cancelled'`` and that
    reason): the row stays cancelled, only why changes -- the planner revives a row
    cancelled by a re-plan when it plans its key again (``backend.reminders.planner``), so this
    is how a cause that went away (a dose log undone) hands its rows back to the planner.
    """
    where = _matching(patient_id=patient_id, kinds=kinds, subject=subject, due_from=due_from)
    stmt = (
        update(Reminder)
        .where(Reminder.state == "cancelled", Reminder.cancelled_reason == was, and_(*where))
        .values(cancelled_reason=reason[:60])
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], db.execute(stmt))
    return result.rowcount or 0


def reschedule(
    db: Session, reminder_id: int, due_at: datetime, not_after: datetime | None = None
) -> bool:
    """Move a still-pending reminder to ``due_at`` (and its lateness limit, if given); a row
    already claimed, sent or cancelled is left as it is. Returns whether it moved."""
    values: dict[str, Any] = {"due_at": due_at, "next_attempt_at": due_at}
    if not_after is not None:
        values["not_after"] = not_after
    result = db.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.state == "pending")
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    return bool(cast(CursorResult[Any], result).rowcount)


def restamp(db: Session, reminder_id: int, subject: Mapping[str, Any]) -> None:
    """Replace what a reminder is about (its ``subject``), whatever its state: the domain
    keeps episode marks there (device health's ``resolved_at``)."""
    db.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id)
        .values(subject=dict(subject))
        .execution_options(synchronize_session="fetch")
    )


def mark_opened(db: Session, reminder: Reminder, at: datetime) -> None:
    """The app reports the push was opened: its timeline keeps the first time."""
    if reminder.opened_at is None:
        db.execute(
            update(Reminder)
            .where(Reminder.id == reminder.id, Reminder.opened_at.is_(None))
            .values(opened_at=at)
            .execution_options(synchronize_session="fetch")
        )


def counts_by_state(db: Session) -> dict[str, int]:
    rows = db.execute(
        Reminder.__table__.select()
        .with_only_columns(Reminder.state, func.count())
        .group_by(Reminder.state)
    ).all()
    return {state: n for state, n in rows}


# -- the planner's bulk write --------------------------------------------------------------


def row(
    key: str,
    kind: str,
    user_id: int,
    patient_id: int,
    due: datetime,
    late: timedelta,
    subject: dict[str, Any],
) -> dict[str, Any]:
    """One planned row as :func:`upsert_planned` takes it (due now, useless after ``late``)."""
    return {
        "dedupe_key": key,
        "kind": kind,
        "user_id": user_id,
        "patient_id": patient_id,
        "subject": subject,
        "due_at": due,
        "not_after": due + late,
        "next_attempt_at": due,
    }


class Subject(dict[str, Any]):
    """A planned row's subject that comes with its JSON text, exactly what ``json.dumps``
    makes of it, so the bulk write does not serialize it again. The dose planner makes a
    million subjects a run from a few shapes, and builds each text from pieces shared by
    thousands (``json.dumps`` of each cost 2.2 us a row, a quarter of the planner's CPU).
    Frozen, so that the text cannot go stale: a changed subject is a new plain dict
    (``{**subject, ...}``), which is serialized as usual."""

    __slots__ = ("text",)

    def __init__(self, fields: dict[str, Any], text: str) -> None:
        super().__init__(fields)
        self.text = text

    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a planned subject is not changed in place: make a new dict")

    __setitem__ = __delitem__ = __ior__ = _frozen
    clear = pop = popitem = setdefault = update = _frozen


def subject_text(subject: dict[str, Any]) -> str:
    """The JSON text stored for ``subject``."""
    return subject.text if type(subject) is Subject else json.dumps(subject)


# PostgreSQL, for keys that may exist (rows cancelled by a re-plan, to revive; or a chunk
# whose COPY met an existing key): one statement per chunk whose rows come as one JSON
# array, unpacked server-side. Compiled once and cached (a multi-row VALUES is compiled again
# for every chunk, which cost more than the database's work).
_PG_UPSERT = text(
    """
    INSERT INTO reminders (dedupe_key, kind, user_id, patient_id, subject, due_at, not_after,
                           next_attempt_at, state, attempts, created_at)
    SELECT t.k, t.kd, t.u, t.p, t.s, t.d, t.na, t.d, 'pending', 0, :now
    FROM json_to_recordset(CAST(:rows AS json))
         AS t(k text, kd text, u integer, p integer, s json, d timestamptz, na timestamptz)
    ON CONFLICT (dedupe_key) DO UPDATE SET
        state = 'pending', cancelled_reason = NULL, due_at = EXCLUDED.due_at,
        not_after = EXCLUDED.not_after, next_attempt_at = EXCLUDED.next_attempt_at,
        subject = EXCLUDED.subject, attempts = 0
    WHERE reminders.state = 'cancelled' AND reminders.cancelled_reason = :replanned
    RETURNING kind
    """.strip()
)
# New keys, the usual case: COPY, streamed, without ON CONFLICT's check of every row and
# with nothing returned. A chunk with a key that exists fails as a whole (its savepoint is
# rolled back) and goes through the upsert instead. Binary: the driver packs each row in C
# and the database reads its instants and numbers as they are instead of parsing text (1.1
# million rows: the database's CPU 1.4 s less than the text format, and no escaping).
_PG_COPY = (
    "COPY reminders (dedupe_key, kind, user_id, patient_id, subject, due_at, not_after,"
    " next_attempt_at, state, attempts, created_at) FROM STDIN (FORMAT BINARY)"
)
_PG_COPY_TYPES = (
    "text",
    "text",
    "int4",
    "int4",
    "text",  # the subject's JSON text: json's binary form is its text (jsonb's is not)
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "int4",
    "timestamptz",
)
PG_CHUNK = 10_000


def _stamps() -> Any:
    """An ISO-8601 formatter that formats each instant once (rows share few instants)."""
    iso: dict[datetime, str] = {}

    def stamp(at: datetime) -> str:
        found = iso.get(at)
        if found is None:
            found = iso[at] = at.isoformat()
        return found

    return stamp


def _pg_copy(
    raw: psycopg.Connection[Any], chunks: list[list[dict[str, Any]]], now: datetime
) -> list[list[dict[str, Any]]]:
    """COPY each chunk under a savepoint of its own (on the driver's connection: this runs
    in a thread while the caller's session is left alone); returns the chunks that met an
    existing key, undone, for the upsert. The driver sends the rows as its buffer fills: the
    database inserts some while the next are packed."""
    refused = []
    dumps = json.dumps
    with raw.cursor() as cursor:
        for chunk in chunks:
            cursor.execute("SAVEPOINT planned_copy")
            try:
                with cursor.copy(_PG_COPY) as copy:
                    copy.set_types(_PG_COPY_TYPES)
                    write = copy.write_row
                    for r in chunk:
                        due, subject = r["due_at"], r["subject"]
                        write(
                            (
                                r["dedupe_key"],
                                r["kind"],
                                r["user_id"],
                                r["patient_id"],
                                subject.text if type(subject) is Subject else dumps(subject),
                                due,
                                r["not_after"],
                                due,
                                "pending",
                                0,
                                now,
                            )
                        )
            except psycopg.errors.UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT planned_copy")
                refused.append(chunk)
            cursor.execute("RELEASE SAVEPOINT planned_copy")
    return refused


def _pg_upsert(db: Session, chunk: list[dict[str, Any]], now: datetime) -> Counter[str]:
    stamp = _stamps()
    # One JSON document per chunk: psycopg's text arrays escape each element with a regex,
    # json.dumps is C.
    payload = json.dumps(
        [
            {
                "k": r["dedupe_key"],
                "kd": r["kind"],
                "u": r["user_id"],
                "p": r["patient_id"],
                "s": r["subject"],
                "d": stamp(r["due_at"]),
                "na": stamp(r["not_after"]),
            }
            for r in chunk
        ]
    )
    params = {"now": now, "replanned": REPLANNED, "rows": payload}
    return Counter(db.execute(_PG_UPSERT, params).scalars().all())


def _sqlite_upsert(db: Session, rows: list[dict[str, Any]], now: datetime) -> Counter[str]:
    # One multi-row VALUES statement per chunk (an executemany of an upsert with RETURNING
    # would run row by row); 500 rows x 11 columns stays under its limit.
    created: Counter[str] = Counter()
    for i in range(0, len(rows), 500):
        chunk = [
            {**r, "state": "pending", "attempts": 0, "created_at": now} for r in rows[i : i + 500]
        ]
        insert = sqlite.insert(Reminder).values(chunk)
        stmt = insert.on_conflict_do_update(
            index_elements=["dedupe_key"],
            set_={
                "state": "pending",
                "cancelled_reason": None,
                "due_at": insert.excluded.due_at,
                "not_after": insert.excluded.not_after,
                "next_attempt_at": insert.excluded.next_attempt_at,
                "subject": insert.excluded.subject,
                "attempts": 0,
            },
            where=(Reminder.state == "cancelled") & (Reminder.cancelled_reason == REPLANNED),
        ).returning(Reminder.kind)
        created.update(db.execute(stmt).scalars())
    return created


def upsert_planned(
    db: Session,
    rows: list[dict[str, Any]],
    now: datetime,
    skip: frozenset[str] | set[str] = frozenset(),
    revive: frozenset[str] | set[str] = frozenset(),
) -> Counter[str]:
    """Insert the rows; a key seen before stays, unless its row was cancelled by a re-plan
    (then it is revived with the new times). Keys in ``skip`` are known to stay (the planner
    looked) and are not sent; keys in ``revive`` are known to exist cancelled by a re-plan."""
    return write_planned(db, rows, now, skip, revive)()


def write_planned(
    db: Session,
    rows: list[dict[str, Any]],
    now: datetime,
    skip: frozenset[str] | set[str] = frozenset(),
    revive: frozenset[str] | set[str] = frozenset(),
) -> Callable[[], Counter[str]]:
    """:func:`upsert_planned` that starts the write and returns a function that finishes it
    and returns what was created by kind. On PostgreSQL the new keys are packed and
    streamed with a binary COPY by a thread on the session's connection, so that the caller can work
    out its next batch meanwhile (the database inserts while Python formats and plans; at
    25,000 patients its work was as long as Python's): the caller must not use the
    session until it has called the function, and must call it (also on errors)."""
    unique = [r for k, r in {r["dedupe_key"]: r for r in rows}.items() if k not in skip]
    if not unique:
        return lambda: Counter()
    if db.get_bind().dialect.name != "postgresql":
        created = _sqlite_upsert(db, unique, now)
        return lambda: created
    known = [r for r in unique if r["dedupe_key"] in revive]
    new = [r for r in unique if r["dedupe_key"] not in revive] if known else unique
    chunks = [new[i : i + PG_CHUNK] for i in range(0, len(new), PG_CHUNK)]
    db.flush()  # the driver's connection sees only what the session has sent
    raw = cast(psycopg.Connection[Any], db.connection().connection.driver_connection)
    outcome: dict[str, Any] = {}

    def copy() -> None:
        try:
            outcome["refused"] = _pg_copy(raw, chunks, now)
        except BaseException as exc:  # handed to the caller's thread by finish()
            outcome["error"] = exc

    writer = threading.Thread(target=copy, name="planner-copy", daemon=True)
    writer.start()

    def finish() -> Counter[str]:
        writer.join()
        error = outcome.get("error")
        if isinstance(error, psycopg.Error):  # as SQLAlchemy would have raised it
            raise DBAPIError.instance(_PG_COPY, None, error, psycopg.Error) from error
        if error is not None:
            raise error
        refused: list[list[dict[str, Any]]] = outcome["refused"]
        created: Counter[str] = Counter()
        for chunk in chunks:
            if not any(chunk is r for r in refused):
                created.update(r["kind"] for r in chunk)
        for chunk in [*refused, *([known] if known else [])]:
            for i in range(0, len(chunk), PG_CHUNK):
                created.update(_pg_upsert(db, chunk[i : i + PG_CHUNK], now))
        return created

    return finish
