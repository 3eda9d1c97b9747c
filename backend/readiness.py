"""Is this process ready for traffic: is the database reachable, and is its schema at the
migrations' head? What ``GET /readyz`` asks (``/healthz`` only says the process is alive).

A new version deployed before ``carecompanion db upgrade`` ran would fail on every query that
touches a new column; a load balancer that polls ``/readyz`` keeps it out until the schema is
there. Flask-free; the heads come from the migration scripts shipped with this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@cache
def code_heads() -> tuple[str, ...]:
    """The head revision(s) of the migrations this code ships (read once per process)."""
    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


@dataclass(frozen=True)
class Readiness:
    database: str  # the dialect's name
    reachable: bool
    current: tuple[str, ...] = ()  # the revision(s) the database is at; () un-migrated

    @property
    def at_head(self) -> bool:
        return self.reachable and self.current == code_heads()

    @property
    def problem(self) -> str | None:
        """Why it is not ready, in words an operator acts on; None when ready."""
        if not self.reachable:
            return "Not ready: the database is unreachable."
        if not self.current:
            return "Not ready: the database has no schema yet; run 'carecompanion db upgrade'."
        if not self.at_head:
            return (
                f"Not ready: the database schema is at {', '.join(self.current)}, the code "
                f"needs {', '.join(code_heads())}; run 'carecompanion db upgrade'."
            )
        return None


def check(engine: Engine) -> Readiness:
    """One connection, two small queries: is there an ``alembic_version`` table, what is in
    it. Read directly, not through Alembic's MigrationContext, which logs two INFO lines
    each time (a load balancer polls this every few seconds)."""
    try:
        with engine.connect() as conn:
            current: list[str] = []
            if inspect(conn).has_table("alembic_version"):
                current = list(conn.scalars(text("SELECT version_num FROM alembic_version")))
    except (DBAPIError, SQLAlchemyError):
        return Readiness(engine.dialect.name, reachable=False)
    return Readiness(engine.dialect.name, reachable=True, current=tuple(sorted(current)))
