"""What the reminder scenarios share: noon in María's zone, a daily noon schedule, a phone for
each persona who should get pushes, and the reminder rows a test looks at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from backend import db
from backend.models import Patient, Reminder
from notifications import register_device
from tests.conftest import START, Api, World

NOON = START + timedelta(hours=2)  # 12:00 in New York, María's zone
DAILY_NOON = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["12:00:00"]}}


def phones(world: World, *who: str, patients: tuple[str, ...] = ("maria",)) -> World:
    """An Android phone for each of ``who`` (token ``{who}-phone``), and the ``patients``
    living in New York."""
    session = db.session()
    for name in who:
        register_device(session, world.users[name].id, f"inst-{name}", f"{name}-phone", "android")
    for key in patients:
        patient = session.get(Patient, world.patients[key].id)
        assert patient is not None
        patient.time_zone = "America/New_York"
    session.commit()
    return world


def rows(**where: Any) -> list[Reminder]:
    """Reminder rows matching ``where`` (column=value), in due order, read afresh."""
    db.session.expire_all()
    stmt = select(Reminder).order_by(Reminder.due_at, Reminder.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(Reminder, key) == value)
    return list(db.session.scalars(stmt))


def noon_medicine(api: Api, world: World, timing: dict[str, Any] = DAILY_NOON, **extra: Any) -> int:
    """María's Lisinopril (by default at noon), ending today: one dose in the planning
    horizon, today's."""
    body = {
        "name": "Lisinopril",
        "timing": timing,
        "start_date": "2026-01-01",
        "end_date": "2026-11-25",
        **extra,
    }
    r = api.post(f"/patients/{world.maria}/medications", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])
