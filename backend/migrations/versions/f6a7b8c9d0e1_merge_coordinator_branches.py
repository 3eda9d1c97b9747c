"""Merge the coordinator branches (check-in templates, check-in schedules, care transitions,
worklist indexes) into one head, and drop the worklist's first queue index, which the
partial ``ix_work_items_unresolved_queue`` replaced (no query uses it any more).

Revision ID: f6a7b8c9d0e1
Revises: b2c3d4e5f6a9, c3d4e5f6a7b9, d4e5f6a7b8c9, e5f6a7b8c9d0
Create Date: 2026-11-25
"""

from alembic import op

revision = "f6a7b8c9d0e1"
down_revision = ("b2c3d4e5f6a9", "c3d4e5f6a7b9", "d4e5f6a7b8c9", "e5f6a7b8c9d0")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_status_urgent_opened_at")


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_items_status_urgent_opened_at", ["status", "urgent", "opened_at"]
        )
