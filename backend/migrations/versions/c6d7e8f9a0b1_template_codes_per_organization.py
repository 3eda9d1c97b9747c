"""check-in template codes unique per organization: ``checkin_templates`` unique on
(organization_id, code) instead of code alone (a 409 no longer confirms another
organization's code); answers, schedules and a patient's flag rules name their template by
``template_organization_id`` (NULL: a built-in) with ``template_code``; the worklist's
check-in evidence says the organization too.

Existing rows keep their meaning: codes were unique until now, so each row's organization is
the one whose template had its code (none for the built-ins).

Revision ID: c6d7e8f9a0b1
Revises: c6e7f8a9b0d2
Create Date: 2026-12-10 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "c6d7e8f9a0b1"
down_revision = "c6e7f8a9b0d2"
branch_labels = None
depends_on = None

REFERRING = ("checkin_responses", "checkin_schedules", "patient_flag_rules")
# Work item kinds whose evidence names a check-in template (as of this revision).
CHECKIN_KINDS = ("checkin_overdue", "checkin_flag", "safety", "social_need")
BUILTIN = "active AND template_organization_id IS NULL"
CUSTOM = "active AND template_organization_id IS NOT NULL"


def upgrade() -> None:
    bind = op.get_bind()
    orphans = bind.scalar(
        sa.text("SELECT count(*) FROM checkin_templates WHERE organization_id IS NULL")
    )
    if orphans:
        # The API never made one; a template with no organization could not be named.
        raise RuntimeError(f"{orphans} check-in templates have no organization; assign one first.")

    for table in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("template_organization_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(
                f"fk_{table}_template_organization_id_organizations",
                "organizations",
                ["template_organization_id"],
                ["id"],
            )
            batch.create_index(f"ix_{table}_template_organization_id", ["template_organization_id"])
        # Codes are still unique here: the organization is the one whose template has it.
        op.execute(
            f"UPDATE {table} SET template_organization_id = ("
            "SELECT t.organization_id FROM checkin_templates t "
            f"WHERE t.code = {table}.template_code)"
        )

    _backfill_work_items(bind)

    with op.batch_alter_table("patient_flag_rules") as batch:
        batch.drop_index(
            "uq_patient_flag_rules_active_name",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
        batch.create_index(
            "uq_patient_flag_rules_active_builtin_name",
            ["patient_id", "template_code", "name"],
            unique=True,
            sqlite_where=sa.text(BUILTIN),
            postgresql_where=sa.text(BUILTIN),
        )
        batch.create_index(
            "uq_patient_flag_rules_active_org_name",
            ["patient_id", "template_organization_id", "template_code", "name"],
            unique=True,
            sqlite_where=sa.text(CUSTOM),
            postgresql_where=sa.text(CUSTOM),
        )

    with op.batch_alter_table("checkin_templates") as batch:
        batch.drop_constraint("uq_checkin_templates_code", type_="unique")
        # The unique (organization_id, code) leads with organization_id: it serves as its index.
        batch.drop_index("ix_checkin_templates_organization_id")
        batch.alter_column("organization_id", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint(
            "uq_checkin_templates_organization_id", ["organization_id", "code"]
        )


def _backfill_work_items(bind: sa.engine.Connection) -> None:
    """Add ``template_organization_id`` to the evidence of items raised on a custom template."""
    query = sa.text("SELECT code, organization_id FROM checkin_templates")
    owners: dict[str, int] = dict(bind.execute(query).all())
    if not owners:
        return
    items = sa.table(
        "work_items", sa.column("id", sa.Integer), sa.column("kind"), sa.column("detail", sa.JSON)
    )
    found = sa.select(items.c.id, items.c.detail).where(items.c.kind.in_(CHECKIN_KINDS))
    for item_id, detail in bind.execute(found).all():
        code = (detail or {}).get("template")
        if code in owners:
            bind.execute(
                items.update()
                .where(items.c.id == item_id)
                .values(detail={**detail, "template_organization_id": owners[code]})
            )


def downgrade() -> None:
    # Fails where two organizations now have the same code, as it must.
    with op.batch_alter_table("checkin_templates") as batch:
        batch.drop_constraint("uq_checkin_templates_organization_id", type_="unique")
        batch.alter_column("organization_id", existing_type=sa.Integer(), nullable=True)
        batch.create_index("ix_checkin_templates_organization_id", ["organization_id"])
        batch.create_unique_constraint("uq_checkin_templates_code", ["code"])
    with op.batch_alter_table("patient_flag_rules") as batch:
        batch.drop_index(
            "uq_patient_flag_rules_active_org_name",
            sqlite_where=sa.text(CUSTOM),
            postgresql_where=sa.text(CUSTOM),
        )
        batch.drop_index(
            "uq_patient_flag_rules_active_builtin_name",
            sqlite_where=sa.text(BUILTIN),
            postgresql_where=sa.text(BUILTIN),
        )
        batch.create_index(
            "uq_patient_flag_rules_active_name",
            ["patient_id", "template_code", "name"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
    for table in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_template_organization_id")
            batch.drop_constraint(
                f"fk_{table}_template_organization_id_organizations", type_="foreignkey"
            )
            batch.drop_column("template_organization_id")
