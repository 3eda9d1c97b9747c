"""dose givers: one patient-wide setting per patient

The unique (patient_id, medication_id) constraint never covered the patient-wide setting:
its medication_id is NULL, and NULLs are distinct in a unique constraint on both PostgreSQL
and SQLite, so two requests at once could each add one. A partial unique index on
patient_id where medication_id IS NULL (both databases have partial indexes) closes that;
duplicates already stored keep the newest row (the one the last write meant).

Revision ID: c6e7f8a9b0d2
Revises: c4d5e6f7a8b0
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "c6e7f8a9b0d2"
down_revision = "c4d5e6f7a8b0"
branch_labels = None
depends_on = None

INDEX = "uq_dose_givers_patient_id_all_medicines"


def upgrade() -> None:
    op.execute(
        "DELETE FROM dose_givers WHERE medication_id IS NULL AND id NOT IN "
        "(SELECT MAX(id) FROM dose_givers WHERE medication_id IS NULL GROUP BY patient_id)"
    )
    op.create_index(
        INDEX,
        "dose_givers",
        ["patient_id"],
        unique=True,
        sqlite_where=sa.text("medication_id IS NULL"),
        postgresql_where=sa.text("medication_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="dose_givers")
