"""Messages between Maria's side and her care team: threads, replies, per-participant read
state, the access log, and pushes that say nothing but "new message".

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from backend import db
from backend.models import CaregiverGrant, Message, MessageThread, User
from notifications.outbox import Reminder
from notifications.texts import render
from tests.conftest import Api, Clock, World, assert_error

SECRET = "My sugar was 310 this morning"


def threads(api: Api, who: str, patient_id: int) -> list[dict[str, Any]]:
    r = api.get(f"/patients/{patient_id}/threads", as_=who)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def start(api: Api, patient_id: int, who: str = "ana") -> dict[str, Any]:
    r = api.post(
        f"/patients/{patient_id}/threads",
        as_=who,
        json={"subject": "Blood sugar", "body": SECRET},
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def pushes() -> list[Reminder]:
    return list(db.session.scalars(select(Reminder).where(Reminder.kind == "message")))


def test_ana_writes_priya_replies_and_each_reads_their_own(
    api: Api, world: World, clock: Clock
) -> None:
    thread = start(api, world.maria)
    assert thread["subject"] == "Blood sugar" and thread["unread_count"] == 0
    path = f"/patients/{world.maria}/threads/{thread['id']}/messages"

    # Priya and Maria each have one unread message; Ana has none (she wrote it).
    assert [t["unread_count"] for t in threads(api, "priya", world.maria)] == [1]
    assert [t["unread_count"] for t in threads(api, "maria", world.maria)] == [1]
    assert [t["unread_count"] for t in threads(api, "ana", world.maria)] == [0]

    clock.advance(minutes=5)
    r = api.get(path, as_="priya")
    assert r.status_code == 200
    assert [m["body"] for m in r.get_json()] == [SECRET]
    assert r.get_json()[0]["author_name"]
    assert [t["unread_count"] for t in threads(api, "priya", world.maria)] == [0]
    assert [t["unread_count"] for t in threads(api, "maria", world.maria)] == [1]

    r = api.post(path, as_="priya", json={"body": "Please check again before lunch."})
    assert r.status_code == 201, r.get_json()
    reply = r.get_json()
    assert reply["author_user_id"] == world.users["priya"].id

    assert [t["unread_count"] for t in threads(api, "ana", world.maria)] == [1]
    assert [t["unread_count"] for t in threads(api, "maria", world.maria)] == [2]
    assert [t["unread_count"] for t in threads(api, "priya", world.maria)] == [0]
    listed = threads(api, "ana", world.maria)[0]
    assert listed["last_message_at"] == reply["created_at"]

    r = api.get(path, as_="ana")
    assert [m["id"] for m in r.get_json()] == [reply["id"], reply["id"] - 1]  # newest first
    assert [t["unread_count"] for t in threads(api, "ana", world.maria)] == [0]
    assert [t["unread_count"] for t in threads(api, "maria", world.maria)] == [2]

    # Reading page 2 (older messages) never moves the read state back.
    r = api.get(path, as_="ana", query_string={"page": 2, "page_size": 1})
    assert r.status_code == 200
    assert [t["unread_count"] for t in threads(api, "ana", world.maria)] == [0]

    # Maria reads it herself.
    api.get(path, as_="maria")
    assert [t["unread_count"] for t in threads(api, "maria", world.maria)] == [0]

    # Priya's and Ana's reads are in Maria's access log; Maria's own are not.
    log = api.get(f"/patients/{world.maria}/access-log", as_="maria").get_json()
    actions = {(e["actor_role"], e["action"]) for e in log}
    assert ("nurse", "message_care_team") in actions
    assert ("daughter", "message_care_team") in actions
    assert not any(e["actor_role"] == "self" for e in log)


def test_pushes_go_to_the_other_participants_and_say_nothing_else(
    api: Api, world: World, clock: Clock
) -> None:
    thread = start(api, world.maria)
    sent = pushes()
    users = world.users
    assert sorted(p.user_id for p in sent) == sorted([users["maria"].id, users["priya"].id])
    for p in sent:
        assert p.due_at == clock.at
        assert (p.not_after - p.due_at).total_seconds() == 24 * 3600
        assert p.patient_id == world.maria
    by_user = {p.user_id: p for p in sent}

    maria = db.session.get(User, users["maria"].id)
    priya = db.session.get(User, users["priya"].id)
    assert maria is not None and priya is not None
    maria.show_details_on_lock_screen = True  # even then: no content
    title, body, _ = render(by_user[maria.id], maria)
    assert body == "Nuevo mensaje de su equipo de atención"
    assert title == "Mensaje nuevo"
    title, body, _ = render(by_user[priya.id], priya)
    assert (title, body) == ("New message", "New message from a patient")
    for p in sent:
        for user in (maria, priya):
            text = " ".join(render(p, user)[:2])
            assert "sugar" not in text.lower() and "310" not in text and "Blood" not in text

    # Priya's reply: one push each to Ana and Maria, none to Priya; deduped per message.
    path = f"/patients/{world.maria}/threads/{thread['id']}/messages"
    r = api.post(path, as_="priya", json={"body": "Thanks, noted."})
    assert r.status_code == 201
    reply_pushes = [p for p in pushes() if p.subject["message_id"] == r.get_json()["id"]]
    assert sorted(p.user_id for p in reply_pushes) == sorted([users["ana"].id, users["maria"].id])
    ana = db.session.get(User, users["ana"].id)
    assert ana is not None
    ana_push = next(p for p in reply_pushes if p.user_id == ana.id)
    assert render(ana_push, ana)[1] in (
        "New message from your care team",
        "Nuevo mensaje de su equipo de atención",
    )
    assert len({p.dedupe_key for p in pushes()}) == len(pushes()) == 4


def test_only_participants_see_threads(api: Api, world: World) -> None:
    thread = start(api, world.maria)
    path = f"/patients/{world.maria}/threads/{thread['id']}/messages"
    for who in ("omar", "sam", "david"):
        assert_error(api.get(f"/patients/{world.maria}/threads", as_=who), 404)
        assert_error(api.get(path, as_=who), 404)
        assert_error(api.post(path, as_=who, json={"body": "hi"}), 404)

    # A caregiver who may see Maria but not message her care team: 403, nothing stored.
    ben = User(firebase_uid="ben", email="ben@example.org", display_name="Ben")
    db.session.add(ben)
    db.session.flush()
    db.session.add(
        CaregiverGrant(
            patient_id=world.maria,
            caregiver_user_id=ben.id,
            relationship="son",
            permissions=["view_medications"],
            granted_by_user_id=world.users["maria"].id,
        )
    )
    db.session.commit()
    world.users["ben"] = ben
    assert_error(api.get(f"/patients/{world.maria}/threads", as_="ben"), 403)
    assert_error(api.get(path, as_="ben"), 403)
    assert_error(api.post(path, as_="ben", json={"body": "hi"}), 403)
    body = {"subject": "Hi", "body": "hi"}
    assert_error(api.post(f"/patients/{world.maria}/threads", as_="ben", json=body), 403)
    # Ben is no participant: no push reached him.
    assert all(p.user_id != ben.id for p in pushes())

    # A thread of another patient is not found under Maria's id.
    chen_thread = start(api, world.chen, who="david")
    other = f"/patients/{world.maria}/threads/{chen_thread['id']}/messages"
    assert_error(api.get(other, as_="priya"), 404)
    assert_error(api.post(other, as_="ana", json={"body": "hi"}), 404)
    assert db.session.scalar(select(func.count(Message.id))) == 2


def test_bad_input_is_a_422_and_stores_nothing(api: Api, world: World) -> None:
    url = f"/patients/{world.maria}/threads"
    for body in (
        {"subject": "Hi"},
        {"body": "hello"},
        {"subject": "Hi", "body": ""},
        {"subject": "Hi", "body": "   "},
        {"subject": " Hi", "body": "hello"},
        {"subject": "Hi", "body": "x" * 4001},
        {"subject": "Hi", "body": "hello", "to": "priya"},
        {"subject": "Hi", "body": 5},
    ):
        assert_error(api.post(url, as_="ana", json=body), 422)
    thread = start(api, world.maria)
    path = f"{url}/{thread['id']}/messages"
    before = len(pushes())
    for body in ({}, {"body": ""}, {"body": "a\x00b"}, {"body": "hi", "author_user_id": 1}):
        assert_error(api.post(path, as_="priya", json=body), 422)
    assert db.session.scalar(select(func.count(MessageThread.id))) == 1
    assert db.session.scalar(select(func.count(Message.id))) == 1
    assert len(pushes()) == before


def test_authors_are_who_the_policy_says_they_are_whatever_name_they_chose(
    api: Api, world: World
) -> None:
    # Ana calls herself a nurse; the thread still says what she is to María.
    r = api.patch("/me", as_="ana", json={"preferred_name": "Nurse Priya Natarajan (Care Team)"})
    assert r.status_code == 200
    thread = start(api, world.maria)
    path = f"/patients/{world.maria}/threads/{thread['id']}/messages"
    r = api.post(path, as_="priya", json={"body": "I will call her."})
    assert r.status_code == 201
    r = api.post(path, as_="maria", json={"body": "Gracias."})
    assert r.status_code == 201
    shown = api.get(path, as_="maria").get_json()
    authors = [(m["author_name"], m["author_role"], m["author_label"]) for m in shown]
    assert authors[::-1] == [
        ("Nurse Priya Natarajan (Care Team)", "caregiver", "daughter"),
        (authors[1][0], "care_team", "nurse, Riverside Primary Care A"),
        (authors[0][0], "self", "patient"),
    ]
