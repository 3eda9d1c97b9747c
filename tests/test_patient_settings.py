"""A patient-wide setting (who gives the doses, the escalation chain) set for the first time
by two requests at the same moment: one is stored, the other is told to look again (409),
never a second patient-wide row that the planner would pick at random. SQLite, and
PostgreSQL with TEST_DATABASE_URL: the two transactions run in a fixed order
(tests/races.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.errors import ServiceError
from backend.models import Patient, User
from backend.models.dose_givers import DoseGivers
from backend.models.escalation import EscalationChain
from backend.services.dose_givers import set_dose_givers
from backend.services.escalation import set_chain
from tests.conftest import World
from tests.races import race

Choose = Callable[[Session, Patient, User, World, int], None]


def _givers(s: Session, patient: Patient, by: User, world: World, n: int) -> None:
    ana = world.users["ana"].id
    set_dose_givers(s, patient, by, None, ("both", "caregivers")[n], [ana])


def _chain(s: Session, patient: Patient, by: User, world: World, n: int) -> None:
    set_chain(s, patient, by, None, [{"after_minutes": 20 + n, "notify": "patient"}])


@pytest.mark.parametrize(
    ("choose", "model"),
    [(_givers, DoseGivers), (_chain, EscalationChain)],
    ids=["dose_givers", "escalation_chain"],
)
def test_two_first_settings_at_once_keep_one_and_the_second_is_a_409(
    ctx: Flask, engine: Engine, world: World, choose: Choose, model: Any
) -> None:
    def as_maria(s: Session, n: int) -> None:
        patient = s.get(Patient, world.maria)
        maria = s.get(User, world.users["maria"].id)
        assert patient is not None and maria is not None
        choose(s, patient, maria, world, n)

    first = Session(bind=engine)
    as_maria(first, 0)  # on her phone: done, not committed

    def on_the_web() -> None:
        with Session(bind=engine) as s:
            as_maria(s, 1)
            s.commit()

    refused = race(engine, first, on_the_web, reaches=f"INSERT INTO {model.__tablename__}")
    assert isinstance(refused, ServiceError) and refused.status == 409, refused
    assert "look again" in refused.message
    db.session.expire_all()
    rows = db.session.scalars(select(model).where(model.patient_id == world.maria))
    assert [r.updated_by_user_id for r in rows] == [world.users["maria"].id]
