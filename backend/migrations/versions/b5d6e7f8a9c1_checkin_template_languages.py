"""check-in templates in several languages: the language a template is written in and its
complete translations (title, every item's text and option displays, by language)

Revision ID: b5d6e7f8a9c1
Revises: a7c1d2e3f4b5
Create Date: 2026-12-06 21:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b5d6e7f8a9c1"
down_revision = "a7c1d2e3f4b5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "checkin_templates",
        sa.Column("language", sa.String(length=8), nullable=False, server_default="en"),
    )
    op.add_column("checkin_templates", sa.Column("translations", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkin_templates") as batch:
        batch.drop_column("translations")
        batch.drop_column("language")
