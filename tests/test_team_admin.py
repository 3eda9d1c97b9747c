"""Running a care team through the API: Priya is the admin of Riverside Primary Care A. She
puts a pharmacist on the team, changes roles, takes people off (their access and pending
pushes end at once), and enrols or un-enrols patients; every change is in the team's trail,
and the patient sees who is on their team and since when.

Injected clock; SQLite, and PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.errors import ServiceError
from backend.models import AccessLogEntry, CareTeamMember, Organization, Patient, Reminder, User
from backend.services.careteams import (
    add_member,
    add_team,
    change_member,
    enroll,
    remove_member,
)
from tests.conftest import Api, Clock, World, assert_error
from tests.queries import statements
from tests.races import race

TEAM_A = "Riverside Primary Care A"


def _team(world: World) -> int:
    team_id: int = world.teams[TEAM_A].id
    return team_id


def _add_rosa(api: Api, world: World, **extra: Any) -> dict[str, Any]:
    r = api.post(
        f"/care-teams/{_team(world)}/members",
        as_="priya",
        json={"firebase_uid": "rosa", "name": "Rosa Pharmacist", "role": "pharmacist", **extra},
    )
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def test_priya_adds_a_pharmacist_who_then_sees_the_teams_patients(
    api: Api, world: World, clock: Clock
) -> None:
    rosa = _add_rosa(api, world)
    assert rosa["role"] == "pharmacist" and rosa["admin"] is False

    assert api.get(f"/patients/{world.maria}", as_="rosa").status_code == 200
    members = api.get(f"/care-teams/{_team(world)}/members", as_="rosa").get_json()
    assert {m["name"]: (m["role"], m["admin"]) for m in members} == {
        world.users["priya"].name: ("nurse", True),
        "Rosa Pharmacist": ("pharmacist", False),
    }
    # María sees who is on her team and since when.
    (team,) = api.get(f"/patients/{world.maria}/care-team", as_="maria").get_json()
    since = {m["name"]: m["since"] for m in team["members"]}
    assert since["Rosa Pharmacist"] is not None and team["enrolled_at"] is not None
    # The trail says who did it.
    (change, *_) = api.get(f"/care-teams/{_team(world)}/changes", as_="rosa").get_json()
    assert change["action"] == "member_added"
    assert change["actor_user_id"] == world.users["priya"].id
    assert change["detail"] == "pharmacist"


def test_only_the_admin_manages_and_other_teams_do_not_exist(api: Api, world: World) -> None:
    rosa = _add_rosa(api, world)
    team = _team(world)
    body = {"firebase_uid": "zed", "name": "Zed", "role": "nurse"}
    assert_error(api.post(f"/care-teams/{team}/members", as_="rosa", json=body), 403)
    assert_error(api.delete(f"/care-teams/{team}/members/{rosa['id']}", as_="rosa"), 403)
    for who in ("omar", "sam", "maria", "ana"):
        assert_error(api.get(f"/care-teams/{team}/members", as_=who), 404)
        assert_error(api.post(f"/care-teams/{team}/members", as_=who, json=body), 404)
        assert_error(api.get(f"/care-teams/{team}/changes", as_=who), 404)
    assert api.get(f"/patients/{world.maria}", as_="zed").status_code == 404


def test_taking_someone_off_the_team_ends_access_and_pending_pushes_at_once(
    api: Api, world: World
) -> None:
    rosa = _add_rosa(api, world)
    # Ana writes to the care team: Rosa has a pending "new message" push.
    r = api.post(
        f"/patients/{world.maria}/threads",
        as_="ana",
        json={"subject": "Blood sugar", "body": "Her readings are high this week."},
    )
    assert r.status_code == 201, r.get_json()
    db.session.expire_all()
    rosas = list(db.session.scalars(select(Reminder).where(Reminder.user_id == rosa["user_id"])))
    assert [p.state for p in rosas] == ["pending"]

    r = api.delete(f"/care-teams/{_team(world)}/members/{rosa['id']}", as_="priya")
    assert r.status_code == 204

    assert_error(api.get(f"/patients/{world.maria}", as_="rosa"), 404)
    db.session.expire_all()
    (push,) = db.session.scalars(select(Reminder).where(Reminder.user_id == rosa["user_id"]))
    assert push.state == "cancelled"
    # Priya still hears of it: only Rosa's went.
    priyas = db.session.scalars(select(Reminder).where(Reminder.user_id == world.users["priya"].id))
    assert [p.state for p in priyas] == ["pending"]


def test_a_team_keeps_an_admin(api: Api, world: World) -> None:
    team = _team(world)
    members = api.get(f"/care-teams/{team}/members", as_="priya").get_json()
    (me,) = [m for m in members if m["admin"]]
    assert_error(
        api.patch(f"/care-teams/{team}/members/{me['id']}", as_="priya", json={"admin": False}),
        409,
    )
    assert_error(api.delete(f"/care-teams/{team}/members/{me['id']}", as_="priya"), 409)
    # With a second admin, Priya may step down; then she manages nothing.
    rosa = _add_rosa(api, world, admin=True)
    r = api.patch(f"/care-teams/{team}/members/{me['id']}", as_="priya", json={"admin": False})
    assert r.status_code == 200 and r.get_json()["admin"] is False
    body = {"role": "physician"}
    assert_error(api.patch(f"/care-teams/{team}/members/{rosa['id']}", as_="priya", json=body), 403)


def test_a_role_change_takes_effect_at_once(api: Api, world: World) -> None:
    rosa = _add_rosa(api, world)
    plan = api.post(
        f"/patients/{world.maria}/care-plans", as_="priya", json={"title": "Diabetes care"}
    )
    path = f"/patients/{world.maria}/care-plans/{plan.get_json()['id']}"
    etag = api.get(path, as_="rosa").headers["ETag"]
    edit = {"title": "Diabetes and heart"}
    assert_error(api.patch(path, as_="rosa", json=edit, headers={"If-Match": etag}), 403)
    r = api.patch(
        f"/care-teams/{_team(world)}/members/{rosa['id']}", as_="priya", json={"role": "physician"}
    )
    assert r.status_code == 200
    assert api.patch(path, as_="rosa", json=edit, headers={"If-Match": etag}).status_code == 200


def test_ending_an_enrolment_ends_the_teams_access_and_is_in_the_patients_log(
    api: Api, world: World, clock: Clock
) -> None:
    team = _team(world)
    assert api.get(f"/patients/{world.maria}", as_="priya").status_code == 200
    r = api.delete(f"/care-teams/{team}/enrollments/{world.maria}", as_="priya")
    assert r.status_code == 204
    assert_error(api.get(f"/patients/{world.maria}", as_="priya"), 404)
    assert api.get(f"/patients/{world.maria}/care-team", as_="maria").get_json() == []
    db.session.expire_all()
    logged = db.session.scalars(
        select(AccessLogEntry.action).where(
            AccessLogEntry.patient_id == world.maria,
            AccessLogEntry.actor_user_id == world.users["priya"].id,
        )
    )
    assert "enrollment_ended" in list(logged)
    # Ended once is a 404 the second time; and she cannot be re-enrolled by an admin who no
    # longer looks after her.
    assert_error(api.delete(f"/care-teams/{team}/enrollments/{world.maria}", as_="priya"), 404)
    again = api.post(f"/care-teams/{team}/enrollments", as_="priya", json={"patient_id": 1})
    assert_error(again, 404)


def test_an_admin_enrols_only_patients_they_already_look_after(api: Api, world: World) -> None:
    # Priya also runs a new team of the same organization.
    org = db.session.get(Organization, world.teams[TEAM_A].organization_id)
    assert org is not None
    team_c = add_team(db.session(), org.name, "Riverside Heart")
    add_member(db.session(), team_c.id, world.uid("priya"), "Priya", None, "nurse", admin=True)
    db.session.commit()
    path = f"/care-teams/{team_c.id}/enrollments"
    r = api.post(path, as_="priya", json={"patient_id": world.maria})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["patient_id"] == world.maria
    # Omar (admin of another team) cannot pull María onto his team: he never saw her.
    team_b = world.teams["Riverside Primary Care B"].id
    body = {"patient_id": world.maria}
    assert_error(api.post(f"/care-teams/{team_b}/enrollments", as_="omar", json=body), 404)
    assert_error(api.get(f"/patients/{world.maria}", as_="omar"), 404)
    # Bad input changes nothing.
    for bad in ({}, {"patient_id": "x"}, {"patient_id": -1}, {"patient_id": 1, "extra": 1}):
        assert_error(api.post(path, as_="priya", json=bad), 422)


@pytest.mark.parametrize("step_down", ["demote", "remove"])
def test_two_admins_taking_each_other_off_at_once_leave_the_team_an_admin(
    ctx: Flask, world: World, engine: Engine, step_down: str
) -> None:
    """Priya and Rosa, the only admins, demote (or remove) each other at the same moment.
    Rosa's change has passed the admin count but is not committed when Priya's starts; Priya's
    commits only after Rosa's, and must then see one admin left: a 409, not an empty team."""
    team = _team(world)
    add_member(db.session(), team, "rosa", "Rosa", None, "pharmacist", admin=True)
    db.session.commit()
    ids = {
        u: db.session.scalar(select(CareTeamMember.id).join(User).where(User.firebase_uid == uid))
        for u, uid in (("priya", world.uid("priya")), ("rosa", "rosa"))
    }

    def take_off(s: Session, who: str, by: str) -> None:
        member = s.get(CareTeamMember, ids[who])
        actor = s.scalar(select(User).join(CareTeamMember).where(CareTeamMember.id == ids[by]))
        assert member is not None and actor is not None
        if step_down == "demote":
            change_member(s, member, actor, None, False)
        else:
            remove_member(s, member, actor)

    first = Session(bind=engine)
    take_off(first, "priya", by="rosa")  # done, not committed

    def priyas_change() -> None:
        with Session(bind=engine) as s:
            take_off(s, "rosa", by="priya")
            s.commit()

    # Priya's first statement that locks or writes: from then on, Rosa's may commit.
    refused = race(engine, first, priyas_change, reaches="UPDATE")
    assert isinstance(refused, ServiceError) and refused.status == 409, refused
    db.session.expire_all()
    admins = db.session.scalars(
        select(CareTeamMember.id).where(
            CareTeamMember.care_team_id == team,
            CareTeamMember.is_admin.is_(True),
            CareTeamMember.active_clause(),
        )
    )
    assert list(admins) == [ids["rosa"]]


def test_a_members_change_costs_the_same_queries_for_a_big_team(
    api: Api, world: World, engine: Engine
) -> None:
    """A role change or a removal re-plans all the team's patients at once: the number of
    queries does not grow with the patients enrolled."""
    team = _team(world)
    rosa = _add_rosa(api, world)
    path = f"/care-teams/{team}/members/{rosa['id']}"
    api.get("/me", as_="priya")  # the first sign-in of the hour records last_seen

    def enrol(n: int) -> None:
        for i in range(n):
            p = Patient(display_name=f"P{i}", created_by_user_id=rosa["user_id"], time_zone="UTC")
            db.session.add(p)
            db.session.flush()
            enroll(db.session(), team, p.id)
        db.session.commit()

    def queries(role: str) -> int:
        with statements(engine) as seen:
            assert api.patch(path, as_="priya", json={"role": role}).status_code == 200
        return len(seen)

    enrol(2)
    few = queries("physician")
    enrol(6)
    assert queries("nurse") == few
    with statements(engine) as seen:
        assert api.delete(path, as_="priya").status_code == 204
    assert len(seen) <= few + 2, seen


def test_the_member_lists_cost_the_same_queries_for_more_members(
    api: Api, world: World, engine: Engine
) -> None:
    """The team's member list, the teams a member is on and the teams a patient sees read
    the members with their names in one query, however many teams and members there are."""
    team = _team(world)
    reads = (
        (f"/care-teams/{team}/members", "priya"),
        ("/care-teams", "priya"),
        (f"/patients/{world.maria}/care-team", "maria"),
    )
    for path, who in reads:
        api.get(path, as_=who)  # the first sign-in of the hour records last_seen

    def queries() -> list[int]:
        counts = []
        for path, who in reads:
            with statements(engine) as seen:
                assert api.get(path, as_=who).status_code == 200
            counts.append(len(seen))
        return counts

    few = queries()
    for i in range(4):
        add_member(db.session(), team, f"nurse-{i}", f"Nurse {i}", None, "nurse")
        other = add_team(db.session(), "Riverside Health", f"Team {i}").id
        add_member(db.session(), other, world.uid("priya"), "Priya", None, "nurse")
        enroll(db.session(), other, world.maria)
    db.session.commit()
    assert queries() == few
    assert len(api.get(f"/care-teams/{team}/members", as_="priya").get_json()) == 5
