"""The planner's bulk write (``notifications.outbox.upsert_planned``): new keys go in at once
(COPY on PostgreSQL), and a key that exists already -- one the planner did not look at, or
one cancelled by a re-plan -- is decided by the upsert: kept as it is, or revived. Whatever
a row says comes back exactly as planned.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from backend import db
from backend.models import Reminder
from notifications.outbox import REPLANNED, cancel, enqueue, row, upsert_planned
from tests.conftest import START, World


def _row(world: World, key: str, due_in: timedelta, **subject: Any) -> dict[str, Any]:
    maria = world.patients["maria"]
    return row(
        key, "dose", maria.user_id or 0, maria.id, START + due_in, timedelta(hours=1), subject
    )


def _stored(key: str) -> Reminder:
    db.session.expire_all()
    found = db.session.scalar(select(Reminder).where(Reminder.dedupe_key == key))
    assert found is not None
    return found


def test_planned_rows_come_back_exactly_as_planned(world: World) -> None:
    awkward = {"slot_key": 'back\\slash "quoted"\ttab\nline\rreturn', "name": "María ☂"}
    rows = [
        _row(world, "plain", timedelta(hours=1), medication_id=1, slot_key="2026-11-25T16:00"),
        _row(world, "awkward\\key", timedelta(hours=2), **awkward),
        {**_row(world, "no patient", timedelta(hours=3)), "patient_id": None, "kind": "summary"},
    ]
    created = upsert_planned(db.session(), rows, START)
    assert created == {"dose": 2, "summary": 1}
    for r in rows:
        stored = _stored(r["dedupe_key"])
        assert (stored.kind, stored.user_id, stored.patient_id) == (
            r["kind"],
            r["user_id"],
            r["patient_id"],
        )
        assert stored.subject == r["subject"]
        assert (stored.due_at, stored.next_attempt_at, stored.not_after) == (
            r["due_at"],
            r["due_at"],
            r["not_after"],
        )
        assert (stored.state, stored.attempts) == ("pending", 0)


def test_a_key_the_planner_did_not_look_at_is_not_written_twice(world: World) -> None:
    """A row the planner's look-up missed (sent long ago, or planned by a request at the same
    moment) stays as it is; the rest of the batch is written."""
    old = _row(world, "dose:1:2026-11-20T12:00", -timedelta(days=5))
    enqueue(db.session(), **{k: v for k, v in old.items() if k != "next_attempt_at"})
    db.session.commit()
    again = _row(world, "dose:1:2026-11-20T12:00", timedelta(hours=1))
    new = [_row(world, f"dose:1:new:{i}", timedelta(hours=1)) for i in range(3)]
    created = upsert_planned(db.session(), [again, *new], START)
    db.session.commit()
    assert created == {"dose": 3}
    assert _stored(old["dedupe_key"]).due_at == old["due_at"]
    for r in new:
        assert _stored(r["dedupe_key"]).state == "pending"


def test_a_row_cancelled_by_a_replan_is_revived_with_its_new_time(world: World) -> None:
    """Whether the planner knew it (``revive``) or not (the bulk insert meets the key)."""
    for name, hinted in (("known", True), ("unknown", False)):
        first = _row(world, f"dose:2:{name}", timedelta(hours=1))
        upsert_planned(db.session(), [first], START)
        cancel(db.session(), reason=REPLANNED, dedupe_prefix=f"dose:2:{name}")
        later = _row(world, f"dose:2:{name}", timedelta(hours=2))
        revive = {later["dedupe_key"]} if hinted else set()
        created = upsert_planned(db.session(), [later], START, revive=revive)
        db.session.commit()
        assert created == {"dose": 1}, name
        stored = _stored(later["dedupe_key"])
        assert (stored.state, stored.cancelled_reason, stored.due_at) == (
            "pending",
            None,
            later["due_at"],
        )
    # a row cancelled for another reason stays cancelled
    other = _row(world, "dose:3:logged", timedelta(hours=1))
    upsert_planned(db.session(), [other], START)
    cancel(db.session(), reason="dose_logged", dedupe_prefix="dose:3:logged")
    assert upsert_planned(db.session(), [other], START) == {}
    assert _stored("dose:3:logged").state == "cancelled"
