"""The push column of the access matrix: for each caregiver permission taken away, the pushes
that stop at once (and the ones that do not).

Every kind a caregiver can be told of needs one permission (``KIND_PERMISSION``); changing
the grant re-plans that caregiver's pending pushes in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend import db
from backend.models import ALL_PERMISSIONS, Permission, Reminder
from backend.reminders.audience import KIND_PERMISSION
from notifications import enqueue
from tests.conftest import START, Api, World

# A missed-dose alert to the caregivers asks for receive_missed_dose_alerts (Circle).
NEEDS = {**KIND_PERMISSION, "missed_dose_alert": Permission.RECEIVE_MISSED_DOSE_ALERTS}
KINDS = sorted(NEEDS)


def _grant(api: Api, world: World) -> int:
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    (ana,) = [g for g in grants if g["caregiver_user_id"] == world.users["ana"].id]
    return int(ana["id"])


def _pending_to_ana(world: World, kind: str) -> int:
    row = enqueue(
        db.session(),
        dedupe_key=f"policy:{kind}",
        kind=kind,
        user_id=world.users["ana"].id,
        patient_id=world.maria,
        due_at=START + timedelta(days=2),
        not_after=START + timedelta(days=3),
        subject={"target": "caregivers"} if kind == "missed_dose_alert" else {},
    )
    db.session.commit()
    assert row is not None
    return row.id


def _after_ana_keeps(api: Api, world: World, keep: list[str], rid: int) -> Reminder | None:
    """María leaves Ana only ``keep``; the pending row ``rid`` as it is afterwards."""
    r = api.patch(
        f"/patients/{world.maria}/caregivers/{_grant(api, world)}",
        as_="maria",
        json={"permissions": keep},
    )
    assert r.status_code == 200, r.get_json()
    db.session.expire_all()
    return db.session.get(Reminder, rid)


@pytest.mark.parametrize("kind", KINDS)
def test_taking_away_the_permission_a_push_needs_cancels_it_at_once(
    api: Api, world: World, kind: str
) -> None:
    rid = _pending_to_ana(world, kind)
    needed = NEEDS[kind].value
    keep = [p for p in ALL_PERMISSIONS if p != needed]
    row = _after_ana_keeps(api, world, keep, rid)
    assert row is not None
    assert (row.state, row.cancelled_reason) == ("cancelled", "access_revoked")


@pytest.mark.parametrize("kind", ["message", "device_health"])
def test_a_push_whose_permission_stays_is_left_alone(api: Api, world: World, kind: str) -> None:
    rid = _pending_to_ana(world, kind)
    other = next(p for p in ALL_PERMISSIONS if p != KIND_PERMISSION[kind].value)
    keep = [p for p in ALL_PERMISSIONS if p != other]
    row = _after_ana_keeps(api, world, keep, rid)
    assert row is not None and row.state == "pending"
