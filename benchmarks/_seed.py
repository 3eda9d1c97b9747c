"""Shared by the benchmarks: a throwaway PostgreSQL schema and fast bulk seeding.

Bulk rows go in with SQLAlchemy Core (``insert(Model)`` with a list of dicts, executed as one
``executemany`` per chunk), so tens of thousands of rows take seconds, not minutes. Column
defaults declared on the models (``default=...``) still apply. Millions of rows (months of
dose logs) go in with :func:`copy_rows`: PostgreSQL's ``COPY``, streamed, no defaults.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import JSON, create_engine, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from backend.db import make_engine
from backend.models import Patient, User

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CHUNK = 5000


def require_local(pg_url: str) -> None:
    """Benchmarks create and drop schemas: only ever on this machine."""
    host = urlsplit(pg_url.replace("+psycopg", "")).hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to benchmark against a non-local database host: {host}")


def schema_url(pg_url: str, schema: str) -> str:
    """``pg_url`` with the schema as the connection's search_path, in the URL itself: what
    ``DATABASE_URL`` needs to give a separate process (gunicorn) the same schema."""
    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@contextlib.contextmanager
def throwaway_schema(
    pg_url: str = PG_URL, prefix: str = "cc_bench"
) -> Iterator[tuple[Engine, str]]:
    """A fresh, empty schema and an engine bound to it; dropped (CASCADE) on the way out,
    whatever happened inside, as tests/conftest.py does."""
    require_local(pg_url)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine, schema
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def insert_many(conn: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Plain bulk insert in chunks (no ids back)."""
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(model), rows[start : start + CHUNK])


def copy_rows(
    conn: Connection, model: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """``COPY <table> (columns) FROM STDIN`` of ``rows`` (PostgreSQL only), streamed as they
    come, in ``conn``'s transaction; returns how many. Several times faster than
    :func:`insert_many` and holds no list in memory. Every NOT NULL column without a server
    default must be in ``columns`` (model defaults do not apply); JSON values are dumped here.
    """
    table = model.__table__
    as_json = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    names = ", ".join(f'"{c}"' for c in columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    count = 0
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            if as_json:
                row = list(row)
                for i in as_json:
                    if row[i] is not None:
                        row[i] = json.dumps(row[i])
            copy.write_row(row)
            count += 1
    return count


def insert_returning_ids(
    conn: Connection, model: Any, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> list[int]:
    """Bulk insert that gives back the new ids in the order of ``rows``. ``key``: columns that
    tell the new rows apart. (A plain ``executemany`` and one SELECT back is several times
    faster than ``INSERT ... RETURNING`` in batches, whose huge statements psycopg must
    rewrite one by one.)"""
    before = conn.scalar(select(func.max(model.id))) or 0
    insert_many(conn, model, rows)
    columns = [model.__table__.c[k] for k in key]
    found = {
        tuple(row[1:]): row[0]
        for row in conn.execute(select(model.id, *columns).where(model.id > before))
    }
    if len(found) != len(rows):
        raise RuntimeError(f"{model.__tablename__}: {key} does not tell the new rows apart")
    return [found[tuple(r[k] for k in key)] for r in rows]


def add_users(conn: Connection, prefix: str, count: int, at: datetime) -> list[int]:
    """``count`` users with uids ``{prefix}-00000``...; signed in recently (``last_seen_at``),
    so a request is a pure read (no last-seen update)."""
    rows = [
        {
            "firebase_uid": f"{prefix}-{i:05d}",
            "email": f"{prefix}-{i:05d}@example.org",
            "display_name": f"{prefix.title()} {i:05d}",
            "created_at": at,
            "last_seen_at": at,
        }
        for i in range(count)
    ]
    return insert_returning_ids(conn, User, rows, key=("firebase_uid",))


def add_patients(
    conn: Connection, user_ids: Sequence[int], names: Sequence[str], at: datetime, **per_row: Any
) -> list[int]:
    """One patient record per login in ``user_ids`` (created by that user). ``per_row``
    values are either one value for every row or a sequence with one value per row."""
    rows: list[dict[str, Any]] = []
    for i, (uid, name) in enumerate(zip(user_ids, names, strict=True)):
        row: dict[str, Any] = {
            "user_id": uid,
            "created_by_user_id": uid,
            "display_name": name,
            "created_at": at,
        }
        for key, value in per_row.items():
            row[key] = value[i] if isinstance(value, list | tuple) else value
        rows.append(row)
    return insert_returning_ids(conn, Patient, rows, key=("user_id",))
