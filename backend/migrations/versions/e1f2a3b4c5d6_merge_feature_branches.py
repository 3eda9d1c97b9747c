"""Merge the feature branches (care plans, appointments, dose-log index, check-ins, messages)
into one head, so `alembic upgrade head` and autogenerate work again.

Revision ID: e1f2a3b4c5d6
Revises: b1c2d3e4f5a6, c2d3e4f5a6b7, c9d0e1f2a3b4, d0e1f2a3b4c5, f5a6b7c8d9e0
Create Date: 2026-11-25
"""

revision = "e1f2a3b4c5d6"
down_revision = ("b1c2d3e4f5a6", "c2d3e4f5a6b7", "c9d0e1f2a3b4", "d0e1f2a3b4c5", "f5a6b7c8d9e0")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
