"""adherence days: settled days' tallies for the panel's cold adherence

The panel's cold path matched every live dose log of the window to its slot (360,000 for a
2,000-patient panel over 30 days). A dosing day whose slots are all settled changes only when
something changes it, so its tally is kept here per (patient, day), valid while its version
equals ``patients.adherence_version`` (bumped by every such change).

Revision ID: c4d5e6f7a8b1
Revises: d2e3f4a5b6c7
Create Date: 2026-12-01 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "c4d5e6f7a8b1"
down_revision = "d2e3f4a5b6c7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "patients",
        sa.Column("adherence_version", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "adherence_days",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scheduled", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("covered", sa.Boolean(), nullable=False),
        sa.Column("first_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_adherence_days_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patient_id", "day", name=op.f("pk_adherence_days")),
    )


def downgrade() -> None:
    op.drop_table("adherence_days")
    op.drop_column("patients", "adherence_version")
