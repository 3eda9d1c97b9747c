"""The planner's bulk write (``notifications.outbox.upsert_planned``): new keys go in at once
(COPY on PostgreSQL), and a key that exists already -- one the planner did not look at, or
one cancelled by a re-plan -- is decided by the upsert: kept as it is, or revived. Whatever
a row says comes back exactly as planned.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend import db
from backend.models import Reminder
from backend.reminders import planner
from notifications.outbox import REPLANNED, Subject, cancel, enqueue, row, upsert_planned
from tests.conftest import START, Api, World
from tests.scenes import noon_medicine, phones


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


def test_a_subject_with_its_text_is_stored_as_that_text(world: World) -> None:
    """The dose planner hands subjects with their JSON text made (``Subject``); what is
    stored reads back as the same subject, and such a subject cannot change in place (its
    text would go stale) while a copy is a plain dict again."""
    fields = {"medication_id": 7, "slot_key": "2026-11-25T16:00", "dose_at": "x"}
    subject = Subject(fields, json.dumps(fields))
    upsert_planned(db.session(), [_row(world, "dose:7:text", timedelta(hours=1))], START)
    planned = {**_row(world, "dose:7:subject", timedelta(hours=1)), "subject": subject}
    assert upsert_planned(db.session(), [planned], START) == {"dose": 1}
    assert _stored("dose:7:subject").subject == fields
    with pytest.raises(TypeError):
        subject["step"] = 1
    with pytest.raises(TypeError):
        subject.update(step=1)
    assert type({**subject, "step": 1}) is dict


def test_the_planned_dose_subjects_carry_exactly_their_json(
    world: World, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every dose row's subject text is what ``json.dumps`` makes of it (the reminder, the
    follow-up, the caregivers' alert, a slot key with a ``#``)."""
    seen: list[dict[str, Any]] = []
    write = planner.write_planned

    def recording(session: Any, planned: list[dict[str, Any]], *args: Any) -> Any:
        seen.extend(planned)
        return write(session, planned, *args)

    monkeypatch.setattr(planner, "write_planned", recording)
    phones(world, "maria", "ana")
    noon_medicine(api, world)  # planned by the change's re-plan
    thrice = {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
    noon_medicine(api, world, thrice, end_date="2026-11-27")
    planner.plan(db.session(), START)
    dose_rows = [r for r in seen if r["dedupe_key"].startswith("dose:")]
    assert {r["kind"] for r in dose_rows} == {"dose", "dose_followup", "missed_dose_alert"}
    assert any("#" in r["subject"]["slot_key"] for r in dose_rows)
    for r in dose_rows:
        assert type(r["subject"]) is Subject
        assert r["subject"].text == json.dumps(dict(r["subject"]))
