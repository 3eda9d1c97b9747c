"""Check-in template codes belong to their organization (issue 11): one organization's codes
tell another nothing (a 409 only for a code of one's own), and a patient enrolled with two
organizations that both have a ``VITALS`` has two templates, kept apart through answers,
schedules, the today view, the worklist, flag rules, caregivers' view and the FHIR export.
Also the migration that brought in per-organization codes, on existing rows.

SQLite and (TEST_DATABASE_URL) PostgreSQL; the clock starts Wednesday 2026-11-25 15:00 UTC,
10:00 in New York (María).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backend import db
from backend.migrate import upgrade
from backend.models import CaregiverGrant, CareTeam, Patient
from backend.services.careteams import enroll
from tests.conftest import START, Api, Clock, World, assert_error
from tests.test_checkin_schedules import DAILY_1030, DUE_1, swept
from tests.test_checkin_templates import good_vitals, other_organization, vitals

LAKESIDE_VITALS = {
    "code": "VITALS",
    "title": "Lakeside activity",
    "hidden_from_caregivers": True,
    "items": [{"code": "active", "text": "How active were you today? 0-10", "type": "scale"}],
    "flag_rules": [
        {"name": "inactive", "kind": "threshold", "item": "active", "op": "<", "value": 3}
    ],
}


@dataclass
class Orgs:
    riverside: int
    lakeside: int
    lakeside_team: int


def _made(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.get_json()
    found: dict[str, Any] = r.get_json()
    return found


@pytest.fixture
def two(api: Api, world: World) -> Orgs:
    """María on a Riverside team (Priya) and a Lakeside one (Lee); each has a VITALS."""
    other_organization(world)
    team = db.session.query(CareTeam).filter_by(name="Lakeside Cardiology").one()
    enroll(db.session(), team.id, world.maria)
    patient = db.session.get(Patient, world.maria)
    assert patient is not None
    patient.time_zone = "America/New_York"
    db.session.commit()
    riverside = _made(api.post("/checkin-templates", as_="priya", json=vitals()))
    lakeside = _made(api.post("/checkin-templates", as_="lee", json=LAKESIDE_VITALS))
    assert riverside["organization_id"] != lakeside["organization_id"]
    return Orgs(riverside["organization_id"], lakeside["organization_id"], team.id)


def answer(api: Api, world: World, org: int | None, answers: dict[str, Any]) -> Any:
    body: dict[str, Any] = {"template": "VITALS", "answers": answers}
    if org is not None:
        body["template_organization_id"] = org
    return api.post(f"/patients/{world.maria}/checkin-responses", as_="maria", json=body)


def test_another_organizations_code_is_free_and_a_409_is_only_about_ones_own(
    api: Api, world: World
) -> None:
    other_organization(world)
    _made(api.post("/checkin-templates", as_="priya", json=vitals()))
    # Before, this was a 409 "exists": Lee learnt Riverside has a VITALS.
    made = _made(api.post("/checkin-templates", as_="lee", json=vitals(title="Lakeside's")))
    assert made["title"] == "Lakeside's"
    for who in ("priya", "lee"):
        body = assert_error(api.post("/checkin-templates", as_=who, json=vitals()), 409)
        assert body["message"].startswith("Your organization has a template with code VITALS")
    body = assert_error(api.post("/checkin-templates", as_="lee", json=vitals("PHQ-9")), 409)
    assert "built-in" in body["message"]  # the built-ins are everyone's and reserved
    # Each reads their own; a stranger neither.
    assert api.get("/checkin-templates/VITALS", as_="lee").get_json()["title"] == "Lakeside's"
    assert api.get("/checkin-templates/VITALS", as_="priya").get_json()["title"] == "Daily vitals"
    assert_error(api.get("/checkin-templates/VITALS", as_="sam"), 404)


def test_a_patient_of_both_organizations_says_which_vitals_and_each_answer_keeps_its_own(
    api: Api, world: World, two: Orgs
) -> None:
    listed = [
        (t["organization_id"], t["title"])
        for t in api.get("/checkin-templates", as_="maria").get_json()
        if t["code"] == "VITALS"
    ]
    assert sorted(listed) == sorted(
        [(two.riverside, "Daily vitals"), (two.lakeside, "Lakeside activity")]
    )
    body = assert_error(api.get("/checkin-templates/VITALS", as_="maria"), 422)
    assert "organization_id" in body["errors"]["query"]
    one = api.get(f"/checkin-templates/VITALS?organization_id={two.lakeside}", as_="maria")
    assert one.get_json()["title"] == "Lakeside activity"

    body = assert_error(answer(api, world, None, {"active": 1}), 422)
    assert "template_organization_id" in body["errors"]["json"]
    # Lakeside's items, not Riverside's, check the answer.
    assert_error(answer(api, world, two.lakeside, good_vitals()), 422)
    lake = _made(answer(api, world, two.lakeside, {"active": 1}))
    river = _made(answer(api, world, two.riverside, good_vitals()))
    assert (lake["template"], lake["template_organization_id"]) == ("VITALS", two.lakeside)
    assert (river["template"], river["template_organization_id"]) == ("VITALS", two.riverside)
    # Lakeside's rule fired on Lakeside's answer only.
    assert [r["rule"] for r in lake["raised"]] == ["inactive"]
    assert river["raised"] == []

    # Lakeside keeps its answers from caregivers; Riverside's are shown (before, hiding went
    # by code, so both were hidden).
    grant = db.session.query(CaregiverGrant).filter_by(caregiver_user_id=world.users["ana"].id)
    grant.one().permissions = [*grant.one().permissions, "view_checkins"]
    db.session.commit()
    base = f"/patients/{world.maria}/checkin-responses"
    assert [r["id"] for r in api.get(base, as_="ana").get_json()] == [river["id"]]
    assert_error(api.get(f"{base}/{lake['id']}", as_="ana"), 404)
    assert api.get(f"{base}/{river['id']}", as_="ana").status_code == 200

    # The FHIR export names two questionnaires.
    r = api.get(f"/fhir/Patient/{world.maria}/$everything", as_="maria")
    bundle = json.loads(r.get_data(as_text=True))
    urls = {
        e["resource"]["id"]: e["resource"]["questionnaire"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    }
    urn = "urn:care-companion:organization:{}:questionnaire:VITALS"
    assert urls == {
        str(lake["id"]): urn.format(two.lakeside),
        str(river["id"]): urn.format(two.riverside),
    }
    fhir = api.get(f"{base}/{lake['id']}/fhir", as_="lee").get_json()
    assert fhir["questionnaire"] == urn.format(two.lakeside)

    # Each nurse's flag rule of one name, one per template.
    for who, org in (("priya", two.riverside), ("lee", two.lakeside)):
        item = "feeling" if who == "priya" else "active"
        rule = {"name": "low", "kind": "threshold", "item": item, "op": "<", "value": 2}
        body = {"template": "VITALS", "template_organization_id": org, "rule": rule}
        made = _made(api.post(f"/patients/{world.maria}/flag-rules", as_=who, json=body))
        assert made["template_organization_id"] == org
    rule = {"name": "low", "kind": "threshold", "item": "active", "op": "<", "value": 1}
    body = {"template": "VITALS", "template_organization_id": two.lakeside, "rule": rule}
    assert_error(api.post(f"/patients/{world.maria}/flag-rules", as_="lee", json=body), 409)


def test_two_schedules_of_vitals_are_answered_shown_and_flagged_each_on_its_own(
    engine: Engine, api: Api, world: World, two: Orgs, clock: Clock
) -> None:
    url = f"/patients/{world.maria}/checkin-schedules"
    daily = {"template": "VITALS", "timing": DAILY_1030, "answer_within": "PT2H"}
    assert (
        "template_organization_id"
        in assert_error(api.post(url, as_="priya", json=daily), 422)["errors"]["json"]
    )
    river = _made(
        api.post(url, as_="priya", json=daily | {"template_organization_id": two.riverside})
    )
    lake = _made(api.post(url, as_="lee", json=daily | {"template_organization_id": two.lakeside}))
    assert (river["template_organization_id"], lake["template_organization_id"]) == (
        two.riverside,
        two.lakeside,
    )

    clock.at = DUE_1 + timedelta(minutes=5)
    response = _made(answer(api, world, two.lakeside, {"active": 5}))
    today = api.get("/me/today", as_="maria").get_json()["patients"][0]["checkins"]
    assert [
        (c["schedule_id"], c["template_organization_id"], c["status"], c["response_id"])
        for c in today
    ] == [
        (river["id"], two.riverside, "due", None),
        (lake["id"], two.lakeside, "answered", response["id"]),
    ]

    # Riverside's window closes unanswered: its item, and only its, is on the worklist.
    clock.at = DUE_1 + timedelta(hours=2, minutes=1)
    swept(engine, clock.at)
    items = api.get("/worklist?kind=checkin_overdue", as_="priya").get_json()
    assert [
        (i["detail"]["schedule_id"], i["detail"]["template_organization_id"]) for i in items
    ] == [(river["id"], two.riverside)]
    panel = api.get(f"/care-teams/{two.lakeside_team}/panel", as_="lee").get_json()
    (row,) = [p for p in panel if p["patient_id"] == world.maria]
    assert row["last_checkin"]["template_organization_id"] == two.lakeside


# -- the migration ---------------------------------------------------------------------------

BEFORE = "c6e7f8a9b0d2"  # the last revision with one global namespace of template codes


def _insert(conn: sa.Connection, table: str, **values: Any) -> int:
    t = sa.Table(table, sa.MetaData(), autoload_with=conn)
    return int(conn.execute(t.insert().values(**values).returning(t.c.id)).scalar_one())


def test_the_migration_keeps_each_stored_row_with_the_template_it_named(
    empty_engine: Engine,
) -> None:
    upgrade(empty_engine, BEFORE)
    at, day = START, START.time()
    person = dict(
        created_at=at, language="en", time_zone="UTC", need_flags=[],
        wake_time=day, breakfast_time=day, lunch_time=day, dinner_time=day, bed_time=day,
    )  # fmt: skip
    with empty_engine.begin() as conn:
        org = _insert(conn, "organizations", name="Riverside")
        user = _insert(
            conn, "users", firebase_uid="u1", show_details_on_lock_screen=False, **person
        )
        patient = _insert(conn, "patients", display_name="P", created_by_user_id=user, **person)
        _insert(
            conn, "checkin_templates", code="VITALS", title="V", organization_id=org, items=[],
            flag_rules=[], caregiver_may_answer=False, hidden_from_caregivers=False, created_at=at,
        )  # fmt: skip
        answer = dict(
            patient_id=patient, answers={}, flags=[], raised=[], answered_by_user_id=user,
            on_behalf=False, at=at,
        )  # fmt: skip
        custom = _insert(conn, "checkin_responses", template_code="VITALS", **answer)
        builtin = _insert(conn, "checkin_responses", template_code="PHQ-9", **answer)
        schedule = _insert(
            conn, "checkin_schedules", patient_id=patient, template_code="VITALS", timing={},
            tz_policy="local", home_time_zone="UTC", starts_at=at, answer_within_minutes=60,
            status="active", note="", created_by_user_id=user, created_at=at,
        )  # fmt: skip
        rule = _insert(
            conn, "patient_flag_rules", patient_id=patient, template_code="VITALS", name="low",
            rule={}, created_by_user_id=user, created_at=at, active=True,
        )  # fmt: skip
        item = dict(
            patient_id=patient, urgent=False, title="t", status="open", opened_at=at,
            evidence_at=at, updated_at=at,
        )  # fmt: skip
        overdue = _insert(
            conn, "work_items", kind="checkin_overdue", key="checkin_overdue:1",
            detail={"schedule_id": schedule, "template": "VITALS"}, **item,
        )  # fmt: skip
        safety = _insert(
            conn, "work_items", kind="safety", key="checkin:2:phq9_item9",
            detail={"response_id": builtin, "template": "PHQ-9"}, **item,
        )  # fmt: skip

    upgrade(empty_engine)

    with empty_engine.connect() as conn:

        def owner(table: str, row: int) -> Any:
            query = f"SELECT template_organization_id FROM {table} WHERE id = :id"
            return conn.execute(sa.text(query), {"id": row}).scalar_one()

        def detail(row: int) -> Any:
            found = conn.execute(
                sa.text("SELECT detail FROM work_items WHERE id = :id"), {"id": row}
            )
            value = found.scalar_one()
            return json.loads(value) if isinstance(value, str) else value

        assert owner("checkin_responses", custom) == org
        assert owner("checkin_responses", builtin) is None
        assert owner("checkin_schedules", schedule) == org
        assert owner("patient_flag_rules", rule) == org
        assert detail(overdue) == {
            "schedule_id": schedule,
            "template": "VITALS",
            "template_organization_id": org,
        }
        assert detail(safety) == {"response_id": builtin, "template": "PHQ-9"}

    template = dict(
        code="VITALS", title="V", items=[], flag_rules=[], caregiver_may_answer=False,
        hidden_from_caregivers=False, created_at=at,
    )  # fmt: skip
    with empty_engine.begin() as conn:  # another organization may now have a VITALS
        lakeside = _insert(conn, "organizations", name="Lakeside")
        _insert(conn, "checkin_templates", organization_id=lakeside, **template)
    with pytest.raises(sa.exc.IntegrityError), empty_engine.begin() as conn:  # but not twice
        _insert(conn, "checkin_templates", organization_id=org, **template)
