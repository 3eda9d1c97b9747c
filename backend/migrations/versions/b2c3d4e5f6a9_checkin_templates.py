"""check-in templates: flag rules, caregiver privacy and author on checkin_templates;
raised flags and the answerer's role on checkin_responses; patient_flag_rules;
organizations.crisis_guidance

Revision ID: b2c3d4e5f6a9
Revises: a1b2c3d4e5f7
Create Date: 2026-11-25 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "b2c3d4e5f6a9"
down_revision = "a1b2c3d4e5f7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkin_templates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flag_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                "hidden_from_caregivers",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch_op.add_column(sa.Column("created_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_checkin_templates_created_by_user_id_users"),
            "users",
            ["created_by_user_id"],
            ["id"],
        )
    with op.batch_alter_table("checkin_templates", schema=None) as batch_op:
        batch_op.alter_column("flag_rules", server_default=None)
        batch_op.alter_column("hidden_from_caregivers", server_default=None)

    with op.batch_alter_table("checkin_responses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("raised", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("answered_as", sa.String(length=30), nullable=True))
    with op.batch_alter_table("checkin_responses", schema=None) as batch_op:
        batch_op.alter_column("raised", server_default=None)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crisis_guidance", sa.JSON(), nullable=True))

    op.create_table(
        "patient_flag_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("template_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("care_plan_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_by_user_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["care_plan_id"],
            ["care_plans.id"],
            name=op.f("fk_patient_flag_rules_care_plan_id_care_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_patient_flag_rules_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["ended_by_user_id"],
            ["users.id"],
            name=op.f("fk_patient_flag_rules_ended_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_flag_rules_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_flag_rules")),
    )
    with op.batch_alter_table("patient_flag_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_flag_rules_care_plan_id"), ["care_plan_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_patient_flag_rules_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            "uq_patient_flag_rules_active_name",
            ["patient_id", "template_code", "name"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )


def downgrade() -> None:
    with op.batch_alter_table("patient_flag_rules", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_patient_flag_rules_active_name",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
        batch_op.drop_index(batch_op.f("ix_patient_flag_rules_patient_id"))
        batch_op.drop_index(batch_op.f("ix_patient_flag_rules_care_plan_id"))
    op.drop_table("patient_flag_rules")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("crisis_guidance")
    with op.batch_alter_table("checkin_responses", schema=None) as batch_op:
        batch_op.drop_column("answered_as")
        batch_op.drop_column("raised")
    with op.batch_alter_table("checkin_templates", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_checkin_templates_created_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("created_by_user_id")
        batch_op.drop_column("hidden_from_caregivers")
        batch_op.drop_column("flag_rules")
