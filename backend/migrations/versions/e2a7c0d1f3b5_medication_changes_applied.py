"""medication changes: what to apply and who applied it

A discharge's medication changes were text to acknowledge: the medicine list never changed.
Each change now keeps the medicine it proposes (``proposal``: the medication as the API
takes it, for a new medicine or the fields a change sets) and who applied it to the
patient's list, and when.

Revision ID: e2a7c0d1f3b5
Revises: b8c9d0e1f2a4
Create Date: 2026-12-06 07:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "e2a7c0d1f3b5"
down_revision = "b8c9d0e1f2a4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("medication_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposal", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("applied_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_medication_changes_applied_by_user_id_users"),
            "users",
            ["applied_by_user_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("medication_changes", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_medication_changes_applied_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("applied_at")
        batch_op.drop_column("applied_by_user_id")
        batch_op.drop_column("proposal")
