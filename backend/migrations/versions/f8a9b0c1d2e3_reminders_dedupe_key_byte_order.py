"""reminders: dedupe_key compared byte by byte ("C") on PostgreSQL

The planner inserts about 1.1 million rows into the outbox for 25,000 patients' next 48 hours
and PostgreSQL spends most of that insert maintaining the table's indexes. The unique index
on ``dedupe_key`` compared keys under the database's collation (a libc locale, C.UTF-8 here:
strcoll on copies of both strings); under "C" it is memcmp. COPY of those 1.1 million rows
into the table with its five indexes, PostgreSQL's CPU: 9.7 -> 8.8 s (two runs each). Keys
are ASCII ids, dates and codes: their order under either collation is the same, and nothing
shows them sorted. SQLite compares bytes already: nothing to do there.

Revision ID: f8a9b0c1d2e3
Revises: c4d5e6f7a8b1
Create Date: 2026-12-07 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "f8a9b0c1d2e3"
down_revision = "c4d5e6f7a8b1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Rewrites the unique index under the new collation (the table itself is not rewritten).
    op.alter_column(
        "reminders",
        "dedupe_key",
        type_=sa.String(200, collation="C"),
        existing_type=sa.String(200),
        existing_nullable=False,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "reminders",
        "dedupe_key",
        type_=sa.String(200, collation="default"),
        existing_type=sa.String(200, collation="C"),
        existing_nullable=False,
    )
