"""Adherence through the API, with the injected clock.

The clock starts at 2026-11-25 15:00 UTC = 10:00 in New York. Maria takes Metformin twice a
day with meals (07:30 and 19:00, her routine) since 2026-11-18; the last 7 local days are
2026-11-19 .. 2026-11-25 (today, up to now).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from backend import db
from backend.models import CaregiverGrant, CareTeamMember, Enrollment, Patient
from tests.conftest import Api, Clock, World, assert_error
from tests.test_medications import add_med, log, ny


def _week_of_doses(api: Api, world: World) -> dict[str, Any]:
    med = add_med(api, world.maria, start_date="2026-11-18")

    def take(day: int, hour: int, minute: int = 0, status: str = "taken") -> None:
        client_id = f"adh-{day}-{hour:02d}{minute:02d}"
        r = log(api, world.maria, med["id"], "maria", client_id, ny(hour, minute, day), status)
        assert r.status_code == 201, r.get_json()

    take(18, 7, 35)  # before the 7-day window: not counted
    take(19, 7, 40)  # 19th: both on time -> covered
    take(19, 19, 5)
    take(20, 9, 45)  # 20th: morning late (still taken) -> covered
    take(20, 19, 0)
    take(21, 7, 30)  # 21st: evening skipped -> not covered
    take(21, 19, 10, "skipped")
    take(22, 19, 0)  # 22nd: morning missing -> not covered
    take(23, 7, 31)  # 23rd: both -> covered
    take(23, 19, 20)
    # 24th: nothing -> two missed; 25th: 07:30 still pending at 10:00, 19:00 in the future
    return med


def test_a_week_of_bid_doses_gives_exact_numbers(api: Api, world: World, clock: Clock) -> None:
    med = _week_of_doses(api, world)
    prn = add_med(api, world.maria, name="Ibuprofen", timing=None, as_needed=True)
    assert log(api, world.maria, prn["id"], "maria", "adh-prn-0001", ny(8)).status_code == 201

    r = api.get(f"/patients/{world.maria}/adherence?days=7", as_="ana")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["days"] == 7
    assert body["start"] == "2026-11-19T00:00:00-05:00"  # local midnight in New York
    assert body["end"] == "2026-11-25T15:00:00+00:00"
    expected = {
        "scheduled": 12,
        "taken": 8,
        "late": 1,
        "skipped": 1,
        "missed": 3,
        "pending": 1,
        "days_with_doses": 6,
        "days_covered": 3,
        "dose_adherence": 0.6667,
        "pdc": 0.5,
    }
    assert body["overall"] == expected
    # PRN medicines are not measured
    assert [m["medication_id"] for m in body["medications"]] == [med["id"]]
    assert body["medications"][0] == {
        "medication_id": med["id"],
        "name": "Metformin",
        "strength": "500 mg",
        **expected,
    }

    clock.advance(hours=2)  # 12:00: this morning's dose is now missed
    overall = api.get(f"/patients/{world.maria}/adherence?days=7", as_="maria").get_json()
    assert overall["overall"] | {} == {
        **expected,
        "scheduled": 13,
        "missed": 4,
        "pending": 0,
        "days_with_doses": 7,
        "dose_adherence": 0.6154,
        "pdc": 0.4286,
    }
    # 30 days reach back to the start date: the 18th (one taken, one missed) is included
    month = api.get(f"/patients/{world.maria}/adherence", as_="priya").get_json()
    assert month["days"] == 30
    assert month["overall"]["scheduled"] == 15 and month["overall"]["taken"] == 9
    assert month["overall"]["days_with_doses"] == 8


def test_period_must_be_7_30_or_90(api: Api, world: World) -> None:
    body = assert_error(api.get(f"/patients/{world.maria}/adherence?days=14", as_="maria"), 422)
    assert "days" in body["errors"]["query"]
    empty = api.get(f"/patients/{world.maria}/adherence?days=90", as_="maria").get_json()
    assert empty["medications"] == []
    assert empty["overall"]["scheduled"] == 0 and empty["overall"]["dose_adherence"] is None


def test_a_caregiver_without_view_medications_is_refused(api: Api, world: World) -> None:
    grant = db.session.query(CaregiverGrant).filter_by(caregiver_user_id=world.users["ana"].id)
    grant.one().permissions = ["view_appointments"]
    db.session.commit()
    assert_error(api.get(f"/patients/{world.maria}/adherence", as_="ana"), 403)
    assert_error(api.get(f"/patients/{world.maria}/adherence", as_="sam"), 404)


def test_the_panel_is_worst_first_and_only_for_team_members(
    api: Api, world: World, clock: Clock
) -> None:
    _week_of_doses(api, world)
    chen_med = add_med(api, world.chen, name="Donepezil", start_date="2026-11-20")
    for day in range(20, 25):  # breakfast only (08:30 in Los Angeles): half the doses
        when = datetime(2026, 11, day, 16, 0, tzinfo=UTC)
        r = log(api, world.chen, chen_med["id"], "david", f"chen-{day}-am", when)
        assert r.status_code == 201, r.get_json()
    team = world.teams["Riverside Primary Care A"].id
    r = api.get(f"/care-teams/{team}/adherence?days=7", as_="priya")
    assert r.status_code == 200, r.get_json()
    rows = r.get_json()
    assert [row["patient_id"] for row in rows] == [world.chen, world.maria]
    assert rows[0]["display_name"] == world.patients["chen"].display_name
    assert (rows[0]["scheduled"], rows[0]["taken"], rows[0]["dose_adherence"]) == (10, 5, 0.5)
    assert rows[0]["pdc"] == 0.0
    assert rows[1]["dose_adherence"] == 0.6667 and rows[1]["pdc"] == 0.5
    assert r.headers["X-Pagination"]

    body = assert_error(api.get(f"/care-teams/{team}/adherence", as_="omar"), 404)
    assert "Mar" not in body["message"]
    assert_error(api.get(f"/care-teams/{team}/adherence", as_="maria"), 404)
    assert_error(api.get("/care-teams/987654/adherence", as_="priya"), 404)


def test_the_panel_runs_a_fixed_number_of_queries(api: Api, world: World) -> None:
    team = world.teams["Riverside Primary Care A"].id
    add_med(api, world.maria, start_date="2026-11-25")

    def count() -> int:
        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = db.get_engine()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert api.get(f"/care-teams/{team}/adherence", as_="priya").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        return len(statements)

    api.get("/me", as_="priya")  # first sign-in of the hour records last_seen; not counted
    one = count()
    creator = world.users["priya"].id
    for i in range(5):
        p = Patient(display_name=f"Panel {i}", created_by_user_id=creator, time_zone="UTC")
        db.session.add(p)
        db.session.flush()
        db.session.add(Enrollment(care_team_id=team, patient_id=p.id))
        db.session.commit()
        add_med(api, p.id, name=f"Med {i}", start_date="2026-11-25")
        add_med(api, p.id, name=f"Other {i}", start_date="2026-11-25")
    assert db.session.query(CareTeamMember).filter_by(care_team_id=team).count() >= 1
    assert count() == one
