"""the opt-in morning summary: users.morning_summary, users.morning_summary_time

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-11-26 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b8c9d0e1f2a3"
down_revision = "a7b8c9d0e1f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("morning_summary", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("morning_summary_time", sa.Time(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("morning_summary_time")
        batch_op.drop_column("morning_summary")
