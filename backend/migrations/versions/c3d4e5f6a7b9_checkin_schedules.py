"""check-in schedules: checkin_schedules

Revision ID: c3d4e5f6a7b9
Revises: a1b2c3d4e5f7
Create Date: 2026-11-25 14:55:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "c3d4e5f6a7b9"
down_revision = "a1b2c3d4e5f7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkin_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("template_code", sa.String(length=40), nullable=False),
        sa.Column("timing", sa.JSON(), nullable=False),
        sa.Column("tz_policy", sa.String(length=10), nullable=False),
        sa.Column("home_time_zone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answer_within_minutes", sa.Integer(), nullable=False),
        sa.Column("expires_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cancelled_by_user_id"],
            ["users.id"],
            name=op.f("fk_checkin_schedules_cancelled_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_checkin_schedules_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_checkin_schedules_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_schedules")),
    )
    with op.batch_alter_table("checkin_schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_schedules_created_by_user_id"),
            ["created_by_user_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_checkin_schedules_patient_id_status", ["patient_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_schedules_patient_id_status")
        batch_op.drop_index(batch_op.f("ix_checkin_schedules_created_by_user_id"))
    op.drop_table("checkin_schedules")
