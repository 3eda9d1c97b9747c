"""care plans and their revisions

Revision ID: b1c2d3e4f5a6
Revises: 69dcc60d9bd5
Create Date: 2026-11-25 13:00:00
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "b1c2d3e4f5a6"
down_revision = "69dcc60d9bd5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("goals", sa.JSON(), nullable=False),
        sa.Column("activities", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_care_plans_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_care_plans_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_plans")),
    )
    with op.batch_alter_table("care_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_plans_created_by_user_id"), ["created_by_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_care_plans_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            "uq_care_plans_active_patient_id",
            ["patient_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "care_plan_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_by_user_id", sa.Integer(), nullable=False),
        sa.Column("at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_user_id"],
            ["users.id"],
            name=op.f("fk_care_plan_revisions_changed_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["care_plans.id"], name=op.f("fk_care_plan_revisions_plan_id_care_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_plan_revisions")),
        sa.UniqueConstraint("plan_id", "version", name=op.f("uq_care_plan_revisions_plan_id")),
    )
    with op.batch_alter_table("care_plan_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_plan_revisions_changed_by_user_id"),
            ["changed_by_user_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_care_plan_revisions_plan_id"), ["plan_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("care_plan_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_plan_revisions_plan_id"))
        batch_op.drop_index(batch_op.f("ix_care_plan_revisions_changed_by_user_id"))

    op.drop_table("care_plan_revisions")
    with op.batch_alter_table("care_plans", schema=None) as batch_op:
        batch_op.drop_index("uq_care_plans_active_patient_id")
        batch_op.drop_index(batch_op.f("ix_care_plans_patient_id"))
        batch_op.drop_index(batch_op.f("ix_care_plans_created_by_user_id"))

    op.drop_table("care_plans")
