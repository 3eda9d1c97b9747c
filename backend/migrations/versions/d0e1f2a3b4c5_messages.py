"""messages: message_threads, messages, thread_reads

Revision ID: d0e1f2a3b4c5
Revises: b8c9d0e1f2a3
Create Date: 2026-11-27 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import backend.db

revision = "d0e1f2a3b4c5"
down_revision = "b8c9d0e1f2a3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_message_threads_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_message_threads_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_threads")),
    )
    op.create_index(
        op.f("ix_message_threads_created_by_user_id"),
        "message_threads",
        ["created_by_user_id"],
        unique=False,
    )
    op.create_index(
        "ix_message_threads_patient_last",
        "message_threads",
        ["patient_id", "last_message_at"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_messages_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["message_threads.id"],
            name=op.f("fk_messages_thread_id_message_threads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(
        op.f("ix_messages_author_user_id"), "messages", ["author_user_id"], unique=False
    )
    op.create_index("ix_messages_thread_id_id", "messages", ["thread_id", "id"], unique=False)
    op.create_table(
        "thread_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_read_message_id", sa.Integer(), nullable=False),
        sa.Column("read_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_read_message_id"],
            ["messages.id"],
            name=op.f("fk_thread_reads_last_read_message_id_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["message_threads.id"],
            name=op.f("fk_thread_reads_thread_id_message_threads"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_thread_reads_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_reads")),
        sa.UniqueConstraint("thread_id", "user_id", name=op.f("uq_thread_reads_thread_id")),
    )
    op.create_index(op.f("ix_thread_reads_user_id"), "thread_reads", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_thread_reads_user_id"), table_name="thread_reads")
    op.drop_table("thread_reads")
    op.drop_index("ix_messages_thread_id_id", table_name="messages")
    op.drop_index(op.f("ix_messages_author_user_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_message_threads_patient_last", table_name="message_threads")
    op.drop_index(op.f("ix_message_threads_created_by_user_id"), table_name="message_threads")
    op.drop_table("message_threads")
