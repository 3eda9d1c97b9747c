"""The worker's planner run (``run_planner``): one transaction of its own; on PostgreSQL it
reads the batches through a second, read-only connection while the first writes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import Reminder
from backend.reminders import planner
from tests.conftest import START, Api, World
from tests.scenes import noon_medicine, phones


def _keys() -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(Reminder.dedupe_key)))


def test_a_run_plans_what_a_change_planned_and_nothing_twice(
    engine: Engine, api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones(world, "maria", "ana")
    noon_medicine(api, world)
    thrice = {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
    noon_medicine(api, world, thrice, end_date="2026-11-27")
    by_the_changes = _keys()
    assert any(k.startswith("dose:") for k in by_the_changes)
    db.session.execute(delete(Reminder))
    db.session.commit()

    reads: list[Any] = []
    writes: list[Any] = []
    read, write = planner._read_batch, planner.write_planned

    def reading(session: Any, *args: Any) -> Any:
        reads.append(session)
        return read(session, *args)

    def writing(session: Any, *args: Any) -> Any:
        writes.append(session)
        return write(session, *args)

    monkeypatch.setattr(planner, "_read_batch", reading)
    monkeypatch.setattr(planner, "write_planned", writing)
    first = planner.run_planner(engine, START)
    assert first["dose"] > 0
    assert {k for k in _keys() if k.startswith("dose:")} == {
        k for k in by_the_changes if k.startswith("dose:")
    }
    assert writes and reads
    separate = all(r is not w for r in reads for w in writes)
    assert separate == (engine.dialect.name == "postgresql")

    again = planner.run_planner(engine, START)
    assert {k: v for k, v in again.items() if k != "patients"} == {}
