"""escalation chains: one patient-wide chain per patient

The same hole as dose_givers had (c6e7f8a9b0d2): the unique (patient_id, medication_id)
constraint does not see the patient-wide chain, whose medication_id is NULL, so two requests
at once could each store one. A partial unique index closes it on both databases;
duplicates already stored keep the newest row.

Revision ID: d8e9f0a1b2c4
Revises: 9a1f3c7e5d20
Create Date: 2026-12-08 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "d8e9f0a1b2c4"
down_revision = "9a1f3c7e5d20"
branch_labels = None
depends_on = None

INDEX = "uq_escalation_chains_patient_id_all_medicines"


def upgrade() -> None:
    op.execute(
        "DELETE FROM escalation_chains WHERE medication_id IS NULL AND id NOT IN "
        "(SELECT MAX(id) FROM escalation_chains WHERE medication_id IS NULL GROUP BY patient_id)"
    )
    op.create_index(
        INDEX,
        "escalation_chains",
        ["patient_id"],
        unique=True,
        sqlite_where=sa.text("medication_id IS NULL"),
        postgresql_where=sa.text("medication_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="escalation_chains")
