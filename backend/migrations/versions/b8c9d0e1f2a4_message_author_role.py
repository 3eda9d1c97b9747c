"""messages: the author's verified role in the patient's circle

A message's author label was only their free-text preferred name, so anyone could post as
"Nurse …". Each message now keeps, from the access policy at the moment it was posted, the
author's role (self, caregiver, managing_caregiver, care_team) and its label (the
relationship, or the care-team role and team). Older messages keep NULL (shown as unknown).

Revision ID: b8c9d0e1f2a4
Revises: a7b8c9d0e1f3
Create Date: 2026-12-06 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b8c9d0e1f2a4"
down_revision = "a7b8c9d0e1f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_role", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("author_label", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("author_label")
        batch_op.drop_column("author_role")
