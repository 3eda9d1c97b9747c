"""The weekly adherence series, for a chart: the same definitions as the 7/30/90-day figures
(backend/services/adherence.py), split by local calendar week (Monday to Sunday), on a known
history. SQLite and (TEST_DATABASE_URL) PostgreSQL; the injected clock.

The clock is Wednesday 2026-11-25 10:00 in New York; María's twice-daily Metformin (07:30,
19:00) since Wednesday the 18th has the history of tests/test_adherence.py.
"""

from __future__ import annotations

from sqlalchemy import select

from backend import db
from backend.models import AccessLogEntry
from tests.conftest import Api, Clock, World, assert_error
from tests.test_adherence import _week_of_doses

EMPTY = {
    "scheduled": 0,
    "taken": 0,
    "late": 0,
    "skipped": 0,
    "missed": 0,
    "pending": 0,
    "days_with_doses": 0,
    "days_covered": 0,
    "dose_adherence": None,
    "pdc": None,
}
# Mon 16 - Sun 22: the 18th (evening missed), 19th and 20th covered (one late), the 21st's
# evening skipped, the 22nd's morning missed.
LAST_WEEK = {
    "week_start": "2026-11-16",
    "scheduled": 10,
    "taken": 7,
    "late": 1,
    "skipped": 1,
    "missed": 2,
    "pending": 0,
    "days_with_doses": 5,
    "days_covered": 2,
    "dose_adherence": 0.7,
    "pdc": 0.4,
}
# Mon 23 - today: the 23rd covered, the 24th both missed, this morning's still pending.
THIS_WEEK = {
    "week_start": "2026-11-23",
    "scheduled": 4,
    "taken": 2,
    "late": 0,
    "skipped": 0,
    "missed": 2,
    "pending": 1,
    "days_with_doses": 2,
    "days_covered": 1,
    "dose_adherence": 0.5,
    "pdc": 0.5,
}


def test_twelve_weeks_by_default_oldest_first_with_the_known_numbers(
    api: Api, world: World, clock: Clock
) -> None:
    med = _week_of_doses(api, world)
    r = api.get(f"/patients/{world.maria}/adherence/weekly", as_="ana")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["weeks"] == 12
    assert body["start"] == "2026-09-07T00:00:00-04:00"  # a Monday, local (still EDT)
    assert [w["week_start"] for w in body["overall"]][:2] == ["2026-09-07", "2026-09-14"]
    assert body["overall"][:10] == [
        {"week_start": w["week_start"], **EMPTY} for w in body["overall"][:10]
    ]
    assert body["overall"][10:] == [LAST_WEEK, THIS_WEEK]
    (metformin,) = body["medications"]
    assert metformin["medication_id"] == med["id"]
    assert metformin["weeks"][10:] == [LAST_WEEK, THIS_WEEK]
    # Read by Ana: in María's access log like any other read of her medicines.
    actions = db.session.scalars(
        select(AccessLogEntry.action).where(
            AccessLogEntry.patient_id == world.maria,
            AccessLogEntry.actor_user_id == world.users["ana"].id,
        )
    ).all()
    assert "view_medications" in actions


def test_the_weeks_add_up_to_the_period_and_move_with_the_clock(
    api: Api, world: World, clock: Clock
) -> None:
    _week_of_doses(api, world)
    clock.advance(hours=2)  # 12:00: this morning's dose is now missed
    body = api.get(f"/patients/{world.maria}/adherence/weekly?weeks=2", as_="maria").get_json()
    this_week = body["overall"][1]
    assert (this_week["missed"], this_week["pending"], this_week["scheduled"]) == (3, 0, 5)
    assert this_week["dose_adherence"] == 0.4
    assert body["overall"][0] == LAST_WEEK


def test_weeks_out_of_range_are_refused(api: Api, world: World) -> None:
    for weeks in (0, 27, "x"):
        assert_error(
            api.get(f"/patients/{world.maria}/adherence/weekly?weeks={weeks}", as_="maria"), 422
        )
    # Someone who may not see her: nothing says she exists.
    assert_error(api.get(f"/patients/{world.maria}/adherence/weekly", as_="sam"), 404)
