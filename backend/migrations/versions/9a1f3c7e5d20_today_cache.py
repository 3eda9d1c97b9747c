"""the today view's cache: a version per patient, bumped by every change to what their day
shows, and one row per (patient, local day) with the day's sections rendered

Revision ID: 9a1f3c7e5d20
Revises: c6d7e8f9a0b1
Create Date: 2026-12-06 23:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

from backend.db import UTCDateTime

revision = "9a1f3c7e5d20"
down_revision = "c6d7e8f9a0b1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "patients",
        sa.Column("today_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "today_cache",
        sa.Column(
            "patient_id",
            sa.Integer(),
            sa.ForeignKey("patients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("doses", sa.Text(), nullable=False),
        sa.Column("extra_doses", sa.Text(), nullable=False),
        sa.Column("prn", sa.Text(), nullable=False),
        sa.Column("appointments", sa.Text(), nullable=False),
        sa.Column("activities", sa.Text(), nullable=False),
        sa.Column("checkins", sa.Text(), nullable=False),
        sa.Column("checkins_for_caregivers", sa.Text(), nullable=False),
    )
    op.create_index("ix_today_cache_day", "today_cache", ["day"])


def downgrade() -> None:
    op.drop_index("ix_today_cache_day", table_name="today_cache")
    op.drop_table("today_cache")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("today_version")
