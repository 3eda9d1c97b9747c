"""worklist: an index in the list's own order over the unresolved items

``GET /worklist`` shows a coordinator's unresolved items urgent first, then oldest first, a
page at a time. With only ``(status, urgent, opened_at)`` indexed (useless for
``status != 'resolved'``), PostgreSQL read every unresolved item of the panel (thousands on a
2,000-patient panel), joined them with the panel's enrollments and sorted them all for each
page. With the unresolved items indexed in that order it walks the index and stops once it
has the page (a few dozen rows). The count that goes with every page reads the existing
partial unique index on ``(patient_id, key)``.

Revision ID: e5f6a7b8c9d0
Revises: a1b2c3d4e5f7
Create Date: 2026-11-25 15:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "e5f6a7b8c9d0"
down_revision = "a1b2c3d4e5f7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_items_unresolved_queue",
            [sa.desc(sa.column("urgent")), "opened_at", "id"],
            unique=False,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_work_items_unresolved_queue",
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        )
