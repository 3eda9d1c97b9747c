"""Message threads between a patient's side (the patient, caregivers allowed to message the
care team) and the care team, and each participant's read state.

Who may read or write a thread is the access policy's ``message_care_team``; a thread has no
member list of its own. ``ThreadRead`` keeps, per user, the last message they have seen, so
unread counts are "messages after that one, not written by me".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


class MessageThread(Base):
    __tablename__ = "message_threads"
    __table_args__ = (Index("ix_message_threads_patient_last", "patient_id", "last_message_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    subject: Mapped[str] = mapped_column(String(200))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_thread_id_id", "thread_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("message_threads.id"))
    author_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Who the author was to the patient when they wrote it, from the access policy (never
    # from the author's own free-text name): self | caregiver | managing_caregiver | care_team,
    # and "daughter" or "nurse, Riverside Primary Care A". NULL for messages from before.
    author_role: Mapped[str | None] = mapped_column(String(30))
    author_label: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class ThreadRead(Base):
    """How far one user has read one thread."""

    __tablename__ = "thread_reads"
    __table_args__ = (UniqueConstraint("thread_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("message_threads.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    last_read_message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
