"""FHIR import: links from source resources to our rows, and a medicine's code

``fhir_links`` makes importing a bundle idempotent (source system + id -> our row, with a
hash of what was imported); ``medications.code`` keeps an imported medicine's
CodeableConcept (RxNorm…) so an export gives back the codes it came with.

Revision ID: f7a8b9c0d1e2
Revises: e3b8d1e2f4c6
Create Date: 2026-12-06 20:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "f7a8b9c0d1e2"
down_revision = "e3b8d1e2f4c6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("medications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.JSON(), nullable=True))
    op.create_table(
        "fhir_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_system", sa.String(length=300), nullable=False),
        sa.Column("source_id", sa.String(length=300), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_fhir_links_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_links")),
        sa.UniqueConstraint(
            "patient_id",
            "kind",
            "source_system",
            "source_id",
            name=op.f("uq_fhir_links_patient_id"),
        ),
    )
    with op.batch_alter_table("fhir_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fhir_links_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_links_patient_id"))
    op.drop_table("fhir_links")
    with op.batch_alter_table("medications", schema=None) as batch_op:
        batch_op.drop_column("code")
