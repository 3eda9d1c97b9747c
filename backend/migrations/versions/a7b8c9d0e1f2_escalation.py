"""escalation chains and "I'm on it" acknowledgements

Revision ID: a7b8c9d0e1f2
Revises: e4f5a6b7c8d9
Create Date: 2026-11-25 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "a7b8c9d0e1f2"
down_revision = "e4f5a6b7c8d9"
branch_labels = None
depends_on = ("d3e4f5a6b7c8",)  # the medications table


def upgrade() -> None:
    op.create_table(
        "escalation_chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["medications.id"],
            name=op.f("fk_escalation_chains_medication_id_medications"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_escalation_chains_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"],
            ["users.id"],
            name=op.f("fk_escalation_chains_updated_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_chains")),
        sa.UniqueConstraint(
            "patient_id", "medication_id", name=op.f("uq_escalation_chains_patient_id")
        ),
    )
    with op.batch_alter_table("escalation_chains", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalation_chains_patient_id"), ["patient_id"], unique=False
        )
    op.create_table(
        "dose_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=False),
        sa.Column("slot_key", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reminder_id", sa.Integer(), nullable=False),
        sa.Column("at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["medications.id"],
            name=op.f("fk_dose_acknowledgements_medication_id_medications"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_dose_acknowledgements_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_dose_acknowledgements_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_acknowledgements")),
        sa.UniqueConstraint(
            "medication_id", "slot_key", name=op.f("uq_dose_acknowledgements_medication_id")
        ),
    )
    with op.batch_alter_table("dose_acknowledgements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dose_acknowledgements_patient_id"), ["patient_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dose_acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dose_acknowledgements_patient_id"))
    op.drop_table("dose_acknowledgements")
    with op.batch_alter_table("escalation_chains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_chains_patient_id"))
    op.drop_table("escalation_chains")
