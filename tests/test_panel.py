"""A care team's panel at a glance (GET /care-teams/{id}/panel): what a nurse scans first
about each patient, from the demo's morning; only for the team's members; in the access log."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend import db
from backend.clock import now
from backend.demo_story import tell
from backend.devtokens import personas
from backend.fixtures import load_fixtures
from backend.models import (
    AccessLogEntry,
    AdherenceSnapshot,
    Appointment,
    CareTeam,
    CheckinResponse,
    Enrollment,
    Patient,
    WorkItem,
)
from tests.conftest import Api, assert_error
from tests.queries import statements


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


def test_only_the_patients_on_the_page_go_in_their_access_log(morning: dict[str, Any]) -> None:
    path = f"/care-teams/{morning['team']}/panel"
    response = _get(morning, f"{path}?page_size=1", "priya")
    (shown,) = response.get_json()
    assert response.headers["X-Total-Count"] == "2"
    logged = db.session.scalars(
        select(AccessLogEntry).where(
            AccessLogEntry.action == "view_panel", AccessLogEntry.path == path
        )
    ).all()
    assert [(e.patient_id, e.actor_role) for e in logged] == [(shown["patient_id"], "nurse")]


def test_anyone_not_on_the_team_gets_nothing(morning: dict[str, Any]) -> None:
    for who in ("omar", "sam", "ana", "maria"):
        assert_error(_get(morning, f"/care-teams/{morning['team']}/panel", who), 404)
    assert_error(_get(morning, "/care-teams/987654/panel", "priya"), 404)


def _add_patients(morning: dict[str, Any], count: int) -> None:
    """``count`` more patients on the team, with ties to break: every few share a name (up
    to case and accents), open items, a check-in score, adherence or an appointment time."""
    creator = db.session.get(Patient, morning["patients"]["maria"])
    assert creator is not None
    at = now()
    names = ("Ana Díaz", "ana diaz", "Ána Diaz", "Bea Ortiz", "Zoë Hart", "zoe hart")
    for i in range(count):
        patient = Patient(
            display_name=names[i % len(names)], created_by_user_id=creator.created_by_user_id
        )
        db.session.add(patient)
        db.session.flush()
        db.session.add(Enrollment(care_team_id=morning["team"], patient_id=patient.id))
        for n in range(i % 3):
            db.session.add(
                WorkItem(
                    patient_id=patient.id,
                    kind="missed_doses",
                    key=f"test:{patient.id}:{n}",
                    urgent=i % 5 == 0,
                    title="Missed doses",
                    detail={},
                    status="open",
                    opened_at=at,
                    evidence_at=at,
                    updated_at=at,
                )
            )
        if i % 4:
            db.session.add(
                CheckinResponse(
                    patient_id=patient.id,
                    template_code="PHQ-9",
                    answers={},
                    score=None if i % 7 == 0 else i % 4 * 5,
                    band=None,
                    flags=[],
                    raised=[],
                    answered_by_user_id=creator.created_by_user_id,
                    at=at - timedelta(days=1),
                )
            )
        for days in (7, 30) if i % 3 else ():
            db.session.add(
                AdherenceSnapshot(
                    patient_id=patient.id,
                    days=days,
                    computed_at=at,
                    scheduled=10,
                    taken=10 - i % 4,
                    late=0,
                    skipped=0,
                    missed=i % 4,
                    pending=0,
                    days_with_doses=days,
                    days_covered=days,
                    dose_adherence=(10 - i % 4) / 10,
                    pdc=1.0,
                )
            )
        if i % 2:
            start = at + timedelta(days=1 + i % 3)
            db.session.add(
                Appointment(
                    patient_id=patient.id,
                    title="Follow-up",
                    type="in_person",
                    location="Clinic",
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                    time_zone="UTC",
                    status="booked",
                    reminder_lead_minutes=[],
                    created_by_user_id=creator.created_by_user_id,
                    updated_by_user_id=creator.created_by_user_id,
                )
            )
    db.session.commit()


# The console's orders before the panel was paged (backend/console/static/panel.js sorted the
# whole panel in the page), a missing value last, ties by name then id.
def _score(r: dict[str, Any]) -> int:
    c = r["last_checkin"]
    return c["score"] if c and c["score"] is not None else -1


def _rate(tally: dict[str, Any] | None) -> float:
    return tally["dose_adherence"] if tally and tally["dose_adherence"] is not None else 2


def _since(r: dict[str, Any]) -> float:
    days = r["days_since_discharge"]
    return float("inf") if days is None else days


def _next(r: dict[str, Any]) -> str:
    return r["next_appointment"]["start"] if r["next_appointment"] else "~"


CONSOLE_SORTS = {
    "name": lambda r: 0,
    "items": lambda r: (-r["urgent_items"], -r["open_items"]),
    "score": lambda r: -_score(r),
    "adherence7": lambda r: _rate(r["adherence_7"]),
    "adherence30": lambda r: _rate(r["adherence_30"]),
    "appointment": _next,
    "discharge": _since,
}
CONSOLE_FILTERS = {
    "all": lambda r: True,
    "open": lambda r: r["open_items"] > 0,
    "urgent": lambda r: r["urgent_items"] > 0,
    "low": lambda r: _rate(r["adherence_30"]) < 0.8,
    "discharged": lambda r: _since(r) <= 30,
}


def _by_name(r: dict[str, Any]) -> tuple[str, int]:
    plain = unicodedata.normalize("NFKD", r["display_name"])
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold(), r["patient_id"]


def _pages(morning: dict[str, Any], query: str, size: int) -> list[dict[str, Any]]:
    """Every page of the panel with this query, in order."""
    rows: list[dict[str, Any]] = []
    for page in range(1, 100):
        path = f"/care-teams/{morning['team']}/panel?{query}&page={page}&page_size={size}"
        response = _get(morning, path, "priya")
        assert response.status_code == 200, response.get_data(as_text=True)
        rows += response.get_json()
        if len(rows) >= int(response.headers["X-Total-Count"]):
            return rows
    raise AssertionError("too many pages")


def test_each_sort_and_filter_pages_the_whole_panel_in_the_consoles_order(
    morning: dict[str, Any],
) -> None:
    _add_patients(morning, 30)
    everyone = _pages(morning, "sort=name", 100)
    assert len(everyone) == 32
    for sort, key in CONSOLE_SORTS.items():
        for show, keep in CONSOLE_FILTERS.items():
            expected = sorted((r for r in everyone if keep(r)), key=lambda r: (key(r), _by_name(r)))
            got = _pages(morning, f"sort={sort}&show={show}", 7)
            assert [r["patient_id"] for r in got] == [r["patient_id"] for r in expected], (
                sort,
                show,
            )
            assert got == expected


def test_the_name_search_covers_the_whole_panel(morning: dict[str, Any]) -> None:
    _add_patients(morning, 30)
    found = _pages(morning, "sort=score&search=%20ZOE%20", 3)
    assert len(found) == 5 and {r["display_name"] for r in found} == {"zoe hart"}
    chen = _pages(morning, "search=wei", 10)
    assert [r["display_name"] for r in chen] == ["Wei Chen"]
    assert _pages(morning, "show=urgent&search=nobody", 10) == []


def test_a_bad_sort_filter_or_search_is_a_422_naming_it(morning: dict[str, Any]) -> None:
    path = f"/care-teams/{morning['team']}/panel"
    for query, name in (
        ("sort=age", "sort"),
        ("show=everyone", "show"),
        (f"search={'x' * 201}", "search"),
    ):
        body = assert_error(_get(morning, f"{path}?{query}", "priya"), 422)
        assert name in body["errors"]["query"], body


@pytest.mark.parametrize("sort", sorted(CONSOLE_SORTS))
def test_a_page_runs_a_fixed_number_of_queries_whatever_the_panels_size(
    morning: dict[str, Any], sort: str
) -> None:
    path = f"/care-teams/{morning['team']}/panel?sort={sort}&show=open&page_size=2"
    _get(morning, path, "priya")  # the first sign-in of the hour records last_seen

    def count() -> int:
        with statements(db.get_engine()) as seen:
            assert _get(morning, path, "priya").status_code == 200
        return len(seen)

    small = count()
    _add_patients(morning, 40)
    _get(morning, path, "priya")  # the new patients' adherence, computed once and stored
    assert count() == small


def test_a_page_of_a_large_panel_logs_each_patient_once_with_the_requests_facts(
    morning: dict[str, Any],
) -> None:
    """Past 50 patients the rows go as one COPY stream on PostgreSQL: the same rows."""
    _add_patients(morning, 70)
    path = f"/care-teams/{morning['team']}/panel"
    response = _get(morning, f"{path}?page_size=60&page=1", "priya")
    assert response.status_code == 200 and len(response.get_json()) == 60
    assert response.headers["X-Total-Count"] == "72"
    assert 'rel="next"' in response.headers["Link"]
    logged = db.session.scalars(select(AccessLogEntry).where(AccessLogEntry.path == path)).all()
    assert {e.patient_id for e in logged} == {r["patient_id"] for r in response.get_json()}
    assert len(logged) == 60
    assert {(e.action, e.actor_role, e.method, e.status) for e in logged} == {
        ("view_panel", "nurse", "GET", 200)
    }
    assert {e.request_id for e in logged} == {response.headers["X-Request-ID"]}
    assert all(abs((e.at - now()).total_seconds()) < 60 for e in logged)
