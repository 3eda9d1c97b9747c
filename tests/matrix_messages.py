"""Matrix entries for message threads (see test_access_matrix)."""

from __future__ import annotations

from backend import db
from backend.clock import now
from backend.models import Message, MessageThread
from tests.conftest import World
from tests.matrix import Entry

ENTRIES = {
    ("/patients/<int:patient_id>/threads", "GET"): Entry("message_care_team", (200,)),
    ("/patients/<int:patient_id>/threads", "POST"): Entry(
        "message_care_team", (201,), body=lambda p: {"subject": "Question", "body": "Hello"}
    ),
    ("/patients/<int:patient_id>/threads/<int:thread_id>/messages", "GET"): Entry(
        "message_care_team", (200,)
    ),
    ("/patients/<int:patient_id>/threads/<int:thread_id>/messages", "POST"): Entry(
        "message_care_team", (201,), body=lambda p: {"body": "Thank you"}
    ),
}


def prepare(world: World) -> dict[str, int]:
    ids: dict[str, int] = {}
    for key, pid in (("maria", world.maria), ("chen", world.chen)):
        author = world.users["priya"].id
        thread = MessageThread(
            patient_id=pid,
            subject="Follow-up",
            created_by_user_id=author,
            created_at=now(),
            last_message_at=now(),
        )
        db.session.add(thread)
        db.session.flush()
        db.session.add(
            Message(
                thread_id=thread.id, author_user_id=author, body="How are you?", created_at=now()
            )
        )
        db.session.flush()
        ids[f"thread_id:{key}"] = thread.id
    return ids
