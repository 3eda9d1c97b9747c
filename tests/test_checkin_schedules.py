"""Check-in schedules: scheduling, prompts through the reminder pipeline, occurrences and their
status, the checkin_overdue worklist rule. SQLite and (TEST_DATABASE_URL) PostgreSQL; the
injected clock moves time, nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from backend import db
from backend.models import Reminder
from backend.services.checkin_schedules import schedule_checkin
from tests.conftest import START, World

DAILY_10 = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:00"]}}


def test_the_helper_schedules_and_plans_prompts(world: World) -> None:
    session = db.session()
    schedule = schedule_checkin(
        session,
        patient_id=world.maria,
        template_code="PHQ-2",
        timing=DAILY_10,
        answer_within=timedelta(hours=24),
        expires_at=START + timedelta(days=30),
        created_by_user_id=world.users["priya"].id,
    )
    session.commit()
    rows = list(session.scalars(select(Reminder).where(Reminder.kind == "checkin_prompt")))
    assert rows and all(r.user_id == world.users["maria"].id for r in rows)
    assert schedule.id
