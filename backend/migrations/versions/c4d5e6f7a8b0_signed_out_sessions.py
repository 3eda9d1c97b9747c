"""signed-out sessions

``signed_out_sessions``: one row per sign-in that was signed out (the user and the
``auth_time`` every ID token of that sign-in carries); tokens of such a sign-in are refused.

Revision ID: c4d5e6f7a8b0
Revises: b5d6e7f8a9c1
Create Date: 2026-12-06 23:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "c4d5e6f7a8b0"
down_revision = "b5d6e7f8a9c1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_out_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("auth_time", sa.BigInteger(), nullable=False),
        sa.Column("signed_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_signed_out_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_out_sessions")),
        sa.UniqueConstraint("user_id", "auth_time", name=op.f("uq_signed_out_sessions_user_id")),
    )


def downgrade() -> None:
    op.drop_table("signed_out_sessions")
