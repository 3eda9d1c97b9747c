"""care teams: team admins, and the trail of member and enrolment changes

Members and enrolments could be changed only by the operator's CLI, and nobody could remove
a member or end an enrolment. A member may now be the team's admin (``is_admin``), who
manages members and enrolments through the API; each change is kept in
``care_team_changes`` (who did what to whom, when).

Revision ID: e3b8d1e2f4c6
Revises: e2a7c0d1f3b5
Create Date: 2026-12-06 07:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "e3b8d1e2f4c6"
down_revision = "e2a7c0d1f3b5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("care_team_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "care_team_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("care_team_id", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("member_user_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["care_team_id"],
            ["care_teams.id"],
            name=op.f("fk_care_team_changes_care_team_id_care_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_care_team_changes_actor_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["member_user_id"], ["users.id"], name=op.f("fk_care_team_changes_member_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_care_team_changes_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_team_changes")),
    )
    op.create_index(
        op.f("ix_care_team_changes_care_team_id"), "care_team_changes", ["care_team_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_care_team_changes_care_team_id"), table_name="care_team_changes")
    op.drop_table("care_team_changes")
    with op.batch_alter_table("care_team_members", schema=None) as batch_op:
        batch_op.drop_column("is_admin")
