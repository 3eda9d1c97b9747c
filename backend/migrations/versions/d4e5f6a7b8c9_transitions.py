"""transitions: encounters, discharges, medication_changes, transition_tasks

Revision ID: d4e5f6a7b8c9
Revises: a1b2c3d4e5f7
Create Date: 2026-11-25 14:55:00.000000

transition_tasks.checkin_schedule_id has no foreign key: checkin_schedules is made on
another branch; add the constraint after the branches are merged if wanted.
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "d4e5f6a7b8c9"
down_revision = "a1b2c3d4e5f7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "encounters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("facility", sa.String(length=200), nullable=False),
        sa.Column("start_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reported_by", sa.String(length=20), nullable=False),
        sa.Column("recorded_by_user_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('hospital_admission', 'er_visit', 'observation')",
            name=op.f("ck_encounters_kind"),
        ),
        sa.CheckConstraint(
            "reported_by IN ('patient', 'caregiver', 'care_team')",
            name=op.f("ck_encounters_reported_by"),
        ),
        sa.CheckConstraint(
            "end_at IS NULL OR end_at >= start_at", name=op.f("ck_encounters_end_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_encounters_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_user_id"],
            ["users.id"],
            name=op.f("fk_encounters_recorded_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
    )
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_encounters_patient_start", ["patient_id", "start_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_encounters_recorded_by_user_id"), ["recorded_by_user_id"], unique=False
        )

    op.create_table(
        "discharges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("facility", sa.String(length=200), nullable=False),
        sa.Column("admitted_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("discharged_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("recorded_by_user_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_discharges_encounter_id_encounters")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_discharges_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_user_id"],
            ["users.id"],
            name=op.f("fk_discharges_recorded_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discharges")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_discharges_encounter_id")),
    )
    with op.batch_alter_table("discharges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discharges_patient_discharged", ["patient_id", "discharged_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_discharges_recorded_by_user_id"), ["recorded_by_user_id"], unique=False
        )

    op.create_table(
        "medication_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("discharge_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("medication_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("acknowledged_by_user_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "change IN ('new', 'changed', 'stopped')", name=op.f("ck_medication_changes_change")
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_user_id"],
            ["users.id"],
            name=op.f("fk_medication_changes_acknowledged_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["discharge_id"],
            ["discharges.id"],
            name=op.f("fk_medication_changes_discharge_id_discharges"),
        ),
        sa.ForeignKeyConstraint(
            ["medication_id"],
            ["medications.id"],
            name=op.f("fk_medication_changes_medication_id_medications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_changes")),
    )
    with op.batch_alter_table("medication_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_medication_changes_discharge_id"), ["discharge_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_medication_changes_medication_id"), ["medication_id"], unique=False
        )

    op.create_table(
        "transition_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("discharge_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("due_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by_user_id", sa.Integer(), nullable=True),
        sa.Column("work_item_id", sa.Integer(), nullable=True),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("checkin_schedule_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('medication_reconciliation', 'follow_up_appointment', 'call_48h', "
            "'readmission_check')",
            name=op.f("ck_transition_tasks_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_transition_tasks_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["discharge_id"],
            ["discharges.id"],
            name=op.f("fk_transition_tasks_discharge_id_discharges"),
        ),
        sa.ForeignKeyConstraint(
            ["done_by_user_id"],
            ["users.id"],
            name=op.f("fk_transition_tasks_done_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_transition_tasks_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_transition_tasks_work_item_id_work_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transition_tasks")),
        sa.UniqueConstraint(
            "discharge_id", "kind", "day", name=op.f("uq_transition_tasks_discharge_id")
        ),
    )
    with op.batch_alter_table("transition_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transition_tasks_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transition_tasks_discharge_id"), ["discharge_id"], unique=False
        )
        batch_op.create_index(
            "ix_transition_tasks_patient_done", ["patient_id", "done_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transition_tasks_work_item_id"), ["work_item_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transition_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transition_tasks_work_item_id"))
        batch_op.drop_index("ix_transition_tasks_patient_done")
        batch_op.drop_index(batch_op.f("ix_transition_tasks_discharge_id"))
        batch_op.drop_index(batch_op.f("ix_transition_tasks_appointment_id"))

    op.drop_table("transition_tasks")
    with op.batch_alter_table("medication_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_medication_changes_medication_id"))
        batch_op.drop_index(batch_op.f("ix_medication_changes_discharge_id"))

    op.drop_table("medication_changes")
    with op.batch_alter_table("discharges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discharges_recorded_by_user_id"))
        batch_op.drop_index("ix_discharges_patient_discharged")

    op.drop_table("discharges")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encounters_recorded_by_user_id"))
        batch_op.drop_index("ix_encounters_patient_start")

    op.drop_table("encounters")
