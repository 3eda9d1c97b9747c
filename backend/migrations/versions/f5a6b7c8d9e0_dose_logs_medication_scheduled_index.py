"""dose logs: index on (medication_id, scheduled_at)

The today view (and dose matching) reads a medicine's logs whose ``taken_at`` *or*
``scheduled_at`` falls in a window. With only ``(medication_id, taken_at)`` indexed,
PostgreSQL reads every log the medicines ever had and filters them, so the view slows down
as the log grows (90 days of history: ~100 rows read per row kept). With both indexed it
combines two index range scans (BitmapOr) and reads only the rows in the window.

Revision ID: f5a6b7c8d9e0
Revises: d3e4f5a6b7c8
Create Date: 2026-11-25 13:00:00.000000
"""

from alembic import op

revision = "f5a6b7c8d9e0"
down_revision = "d3e4f5a6b7c8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dose_logs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dose_logs_medication_scheduled", ["medication_id", "scheduled_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dose_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_dose_logs_medication_scheduled")
