"""A care team's panel at a glance (GET /care-teams/{id}/panel): what a nurse scans first
about each patient, from the demo's morning; only for the team's members; in the access log."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend import db
from backend.clock import now
from backend.demo_story import tell
from backend.devtokens import personas
from backend.fixtures import load_fixtures
from backend.models import AccessLogEntry, CareTeam, Enrollment, Patient
from tests.conftest import Api, assert_error


@pytest.fixture
def morning(ctx: Flask) -> dict[str, Any]:
    loaded = load_fixtures(db.session())
    db.session.commit()
    tell(ctx, ctx.config["SETTINGS"], personas())
    team = db.session.scalars(select(CareTeam).where(CareTeam.name == "Riverside Primary Care A"))
    return {
        "api": Api(ctx.test_client(), ctx, None),
        "patients": {k: p.id for k, p in loaded["patients"].items()},
        "team": team.one().id,
        "uids": {k: u.firebase_uid for k, u in loaded["users"].items()},
    }


def _get(morning: dict[str, Any], path: str, who: str) -> Any:
    api: Api = morning["api"]
    token = api.token(morning["uids"][who])
    return api.client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_priya_sees_each_patient_with_what_to_scan_first(morning: dict[str, Any]) -> None:
    response = _get(morning, f"/care-teams/{morning['team']}/panel", "priya")
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = {r["display_name"]: r for r in response.get_json()}
    assert set(rows) == {"María García", "Wei Chen"}
    maria, chen = rows["María García"], rows["Wei Chen"]
    assert maria["open_items"] >= 2 and maria["urgent_items"] == 0
    assert maria["last_checkin"]["template"] == "PHQ-9"
    assert maria["last_checkin"]["score"] == 16
    assert maria["last_checkin"]["band"] == "moderately_severe"
    assert maria["adherence_7"]["missed"] == 3
    assert maria["adherence_30"]["scheduled"] > maria["adherence_7"]["scheduled"]
    assert maria["days_since_discharge"] is None
    assert chen["days_since_discharge"] == 2
    assert chen["last_checkin"] is None
    upcoming = [r["next_appointment"] for r in rows.values() if r["next_appointment"]]
    assert upcoming and all(a["start"] >= maria["last_checkin"]["at"] for a in upcoming)


def test_the_panel_is_in_each_patients_access_log(morning: dict[str, Any]) -> None:
    _get(morning, f"/care-teams/{morning['team']}/panel", "priya")
    logged = db.session.scalars(
        select(AccessLogEntry).where(
            AccessLogEntry.action == "view_panel",
            AccessLogEntry.path == f"/care-teams/{morning['team']}/panel",
        )
    ).all()
    assert {e.patient_id for e in logged} == set(morning["patients"].values())
    assert {e.actor_role for e in logged} == {"nurse"}


def test_anyone_not_on_the_team_gets_nothing(morning: dict[str, Any]) -> None:
    for who in ("omar", "sam", "ana", "maria"):
        assert_error(_get(morning, f"/care-teams/{morning['team']}/panel", who), 404)
    assert_error(_get(morning, "/care-teams/987654/panel", "priya"), 404)


def test_a_large_panel_logs_every_patient_once_with_the_requests_facts(
    morning: dict[str, Any],
) -> None:
    """Past 50 patients the rows go as one COPY stream on PostgreSQL: the same rows."""
    creator = db.session.scalars(select(Patient)).first()
    assert creator is not None
    for i in range(60):
        patient = Patient(
            display_name=f"Panel patient {i}", created_by_user_id=creator.created_by_user_id
        )
        db.session.add(patient)
        db.session.flush()
        db.session.add(Enrollment(care_team_id=morning["team"], patient_id=patient.id))
    db.session.commit()
    path = f"/care-teams/{morning['team']}/panel"
    response = _get(morning, path, "priya")
    assert response.status_code == 200 and len(response.get_json()) == 62
    logged = db.session.scalars(select(AccessLogEntry).where(AccessLogEntry.path == path)).all()
    assert len(logged) == len({e.patient_id for e in logged}) == 62
    assert {(e.action, e.actor_role, e.method, e.status) for e in logged} == {
        ("view_panel", "nurse", "GET", 200)
    }
    assert {e.request_id for e in logged} == {response.headers["X-Request-ID"]}
    assert all(abs((e.at - now()).total_seconds()) < 60 for e in logged)
