"""adherence snapshots: the panel's adherence, written by the worklist sweep

``GET /care-teams/{id}/adherence`` computed every patient's adherence on each request (2.7 s
for a 2,000-patient panel with 90 days of dose logs). The sweep already computes the 7- and
30-day tallies of every enrolled patient every 15 minutes; it now keeps them here, one row
per (patient, days), and the panel reads the fresh ones.

Revision ID: a7b8c9d0e1f3
Revises: f6a7b8c9d0e1
Create Date: 2026-11-25 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "a7b8c9d0e1f3"
down_revision = "f6a7b8c9d0e1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adherence_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("computed_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scheduled", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("days_with_doses", sa.Integer(), nullable=False),
        sa.Column("days_covered", sa.Integer(), nullable=False),
        sa.Column("dose_adherence", sa.Float(), nullable=True),
        sa.Column("pdc", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_adherence_snapshots_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adherence_snapshots")),
        sa.UniqueConstraint("patient_id", "days", name=op.f("uq_adherence_snapshots_patient_id")),
    )


def downgrade() -> None:
    op.drop_table("adherence_snapshots")
