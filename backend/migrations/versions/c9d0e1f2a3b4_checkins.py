"""check-ins: checkin_templates (custom templates) and checkin_responses (answers, scored)

Revision ID: c9d0e1f2a3b4
Revises: b8c9d0e1f2a3
Create Date: 2026-11-26 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "c9d0e1f2a3b4"
down_revision = "b8c9d0e1f2a3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkin_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("caregiver_may_answer", sa.Boolean(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_checkin_templates_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_checkin_templates_code")),
    )
    with op.batch_alter_table("checkin_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_templates_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "checkin_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("template_code", sa.String(length=40), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("band", sa.String(length=30), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("answered_by_user_id", sa.Integer(), nullable=False),
        sa.Column("on_behalf", sa.Boolean(), nullable=False),
        sa.Column("at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answered_by_user_id"],
            ["users.id"],
            name=op.f("fk_checkin_responses_answered_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_checkin_responses_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_responses")),
    )
    with op.batch_alter_table("checkin_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checkin_responses_answered_by_user_id"),
            ["answered_by_user_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_checkin_responses_patient_id_at", ["patient_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checkin_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_checkin_responses_patient_id_at")
        batch_op.drop_index(batch_op.f("ix_checkin_responses_answered_by_user_id"))
    op.drop_table("checkin_responses")
    with op.batch_alter_table("checkin_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkin_templates_organization_id"))
    op.drop_table("checkin_templates")
