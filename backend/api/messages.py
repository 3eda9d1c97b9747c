"""``/patients/{id}/threads``: messages between the patient's side and their care team.

Everyone who may ``message_care_team`` for the patient takes part: the patient, their
managing caregiver, caregivers granted ``message_care_team`` and the care team (coordinators
of other teams do not see the patient at all). Reads by anyone but the patient are in the
access log (``authorize`` records them). Each participant has their own read state; reading a
thread's messages marks them read for the caller.

A new message sends each other participant one push that says only that there is a new
message, in their language, never its subject or text (``notifications.texts``).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from backend import db
from backend.access import Action, PatientAccess, Role, authorize, verified_label
from backend.api.blueprint import Blueprint
from backend.api.common import (
    BaseSchema,
    Choice,
    Instant,
    PaginatedSelect,
    error_responses,
    trimmed,
)
from backend.auth import current_user
from backend.clock import now
from backend.errors import fail
from backend.models import (
    Message,
    MessageThread,
    ThreadRead,
    User,
)
from backend.reminders.messages import notify_participants

blp = Blueprint("messages", __name__, description="Messages with the care team")

MAX_BODY = 4000


class NewMessageSchema(BaseSchema):
    body = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_BODY))

    @ma.validates("body")
    def _not_blank(self, value: str, **_: Any) -> None:
        if not value.strip():
            raise ma.ValidationError("A message needs some text.")


class NewThreadSchema(NewMessageSchema):
    subject = ma.fields.String(required=True, validate=trimmed(200))


class ThreadSchema(ma.Schema):
    id = ma.fields.Integer()
    patient_id = ma.fields.Integer()
    subject = ma.fields.String()
    created_by_user_id = ma.fields.Integer()
    created_at = Instant()
    last_message_at = Instant()
    unread_count = ma.fields.Integer(metadata={"description": "Unread by the caller"})
    last_read_message_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "The caller's read state"}
    )


class MessageSchema(ma.Schema):
    id = ma.fields.Integer()
    thread_id = ma.fields.Integer()
    author_user_id = ma.fields.Integer()
    author_name = ma.fields.String(
        allow_none=True, metadata={"description": "The author's own chosen name (free text)"}
    )
    author_role = ma.fields.String(
        allow_none=True,
        validate=Choice("Role", [r.value for r in Role]),
        metadata={"description": "The author's role in the patient's circle when they wrote it"},
    )
    author_label = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Verified: 'patient', the caregiver's relationship, or the "
            "care-team role and team (null for messages from before it was kept)",
            "example": "nurse, Riverside Primary Care A",
        },
    )
    body = ma.fields.String()
    created_at = Instant()


def _unread_count(user_id: int) -> Any:
    last_read = (
        select(ThreadRead.last_read_message_id)
        .where(ThreadRead.thread_id == MessageThread.id, ThreadRead.user_id == user_id)
        .scalar_subquery()
    )
    return (
        select(func.count(Message.id))
        .where(
            Message.thread_id == MessageThread.id,
            Message.author_user_id != user_id,
            Message.id > func.coalesce(last_read, 0),
        )
        .scalar_subquery()
    )


def _thread_rows(user_id: int) -> Any:
    last_read = (
        select(ThreadRead.last_read_message_id)
        .where(ThreadRead.thread_id == MessageThread.id, ThreadRead.user_id == user_id)
        .scalar_subquery()
    )
    return select(
        MessageThread,
        _unread_count(user_id).label("unread_count"),
        last_read.label("last_read_message_id"),
    )


def _thread_view(thread: MessageThread, unread: int, last_read: int | None) -> dict[str, Any]:
    return {
        "id": thread.id,
        "patient_id": thread.patient_id,
        "subject": thread.subject,
        "created_by_user_id": thread.created_by_user_id,
        "created_at": thread.created_at,
        "last_message_at": thread.last_message_at,
        "unread_count": int(unread or 0),
        "last_read_message_id": last_read,
    }


class _ThreadPage(PaginatedSelect):
    @property
    def items(self) -> list[Any]:
        return [_thread_view(*row) for row in db.session.execute(self.paged())]


class _MessagePage(PaginatedSelect):
    @property
    def items(self) -> list[Any]:
        return [_message_view(message, name) for message, name in db.session.execute(self.paged())]


def _message_view(message: Message, author_name: str | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "thread_id": message.thread_id,
        "author_user_id": message.author_user_id,
        "author_name": author_name,
        "author_role": message.author_role,
        "author_label": message.author_label,
        "body": message.body,
        "created_at": message.created_at,
    }


def get_thread(patient_id: int, thread_id: int) -> MessageThread:
    thread = db.session.get(MessageThread, thread_id)
    if thread is None or thread.patient_id != patient_id:
        fail(404, "No such thread.")
    return thread


def mark_read(thread_id: int, user_id: int, message_id: int) -> None:
    """Move the user's read state forward to ``message_id`` (never back); race-safe upsert."""
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(ThreadRead)
    stmt = insert.values(
        thread_id=thread_id, user_id=user_id, last_read_message_id=message_id, read_at=now()
    )
    newer = stmt.excluded.last_read_message_id > ThreadRead.last_read_message_id
    stmt = stmt.on_conflict_do_update(
        index_elements=["thread_id", "user_id"],
        set_={
            "last_read_message_id": case(
                (newer, stmt.excluded.last_read_message_id),
                else_=ThreadRead.last_read_message_id,
            ),
            "read_at": case((newer, stmt.excluded.read_at), else_=ThreadRead.read_at),
        },
    )
    db.session.execute(stmt)


def post_message(access: PatientAccess, thread: MessageThread, body: str) -> Message:
    at = now()
    message = Message(
        thread_id=thread.id,
        author_user_id=access.user.id,
        author_role=access.role.value,
        author_label=verified_label(access),
        body=body,
        created_at=at,
    )
    db.session.add(message)
    thread.last_message_at = at
    db.session.flush()
    mark_read(thread.id, access.user.id, message.id)
    notify_participants(db.session(), access.patient, thread, message, at)
    return message


@blp.route("/patients/<int:patient_id>/threads")
class Threads(MethodView):
    @blp.response(200, ThreadSchema(many=True))
    @blp.paginate(_ThreadPage)
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int) -> Any:
        """The patient's message threads, latest first, with the caller's unread counts"""
        access = authorize(current_user(), patient_id, Action.MESSAGE_CARE_TEAM)
        return (
            _thread_rows(access.user.id)
            .where(MessageThread.patient_id == patient_id)
            .order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc())
        )

    @blp.arguments(NewThreadSchema)
    @blp.response(201, ThreadSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int) -> Any:
        """Start a thread with its first message"""
        access = authorize(current_user(), patient_id, Action.MESSAGE_CARE_TEAM)
        at = now()
        thread = MessageThread(
            patient_id=patient_id,
            subject=data["subject"],
            created_by_user_id=access.user.id,
            created_at=at,
            last_message_at=at,
        )
        db.session.add(thread)
        db.session.flush()
        message = post_message(access, thread, data["body"])
        return _thread_view(thread, 0, message.id)


@blp.route("/patients/<int:patient_id>/threads/<int:thread_id>/messages")
class ThreadMessages(MethodView):
    @blp.response(200, MessageSchema(many=True))
    @blp.paginate()
    @error_responses(blp, 403, 404)
    def get(self, patient_id: int, thread_id: int, pagination_parameters: Any) -> Any:
        """A thread's messages, newest first; marks what is shown as read for the caller"""
        access = authorize(current_user(), patient_id, Action.MESSAGE_CARE_TEAM)
        thread = get_thread(patient_id, thread_id)
        stmt = (
            select(Message, func.coalesce(User.preferred_name, User.display_name))
            .join(User, User.id == Message.author_user_id)
            .where(Message.thread_id == thread.id)
            .order_by(Message.id.desc())
        )
        page = _MessagePage(stmt, pagination_parameters)
        items = page.items
        if items:
            mark_read(thread.id, access.user.id, max(m["id"] for m in items))
        return items

    @blp.arguments(NewMessageSchema)
    @blp.response(201, MessageSchema)
    @error_responses(blp, 403, 404)
    def post(self, data: dict[str, Any], patient_id: int, thread_id: int) -> Any:
        """Reply in a thread"""
        access = authorize(current_user(), patient_id, Action.MESSAGE_CARE_TEAM)
        thread = get_thread(patient_id, thread_id)
        message = post_message(access, thread, data["body"])
        user = access.user
        return _message_view(message, user.preferred_name or user.display_name)
