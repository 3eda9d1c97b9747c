"""dose givers: who receives a patient's on-time dose reminder and its follow-up

Per patient (``medication_id`` null) and per medicine: the patient, chosen caregivers who
give the doses, or both. No row keeps the default (the patient's own login; the managing
caregivers of a managed patient).

Revision ID: a7c1d2e3f4b5
Revises: f7c1a2b3d4e5
Create Date: 2026-12-06 20:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "a7c1d2e3f4b5"
down_revision = "f7c1a2b3d4e5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dose_givers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=True),
        sa.Column("receives", sa.String(length=12), nullable=False),
        sa.Column("caregiver_user_ids", sa.JSON(), nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["medications.id"],
            name=op.f("fk_dose_givers_medication_id_medications"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_dose_givers_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"],
            ["users.id"],
            name=op.f("fk_dose_givers_updated_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_givers")),
        sa.UniqueConstraint("patient_id", "medication_id", name=op.f("uq_dose_givers_patient_id")),
    )
    op.create_index(op.f("ix_dose_givers_patient_id"), "dose_givers", ["patient_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dose_givers_patient_id"), table_name="dose_givers")
    op.drop_table("dose_givers")
