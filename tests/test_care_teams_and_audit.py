"""Care teams (a coordinator sees only their teams' patients) and the access log."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from backend import db
from backend.cli import cli
from backend.models import CareTeamMember, User
from backend.services.careteams import add_member
from tests.conftest import Api, World, assert_error


def test_priya_sees_her_panel_and_omar_sees_nothing_of_it(api: Api, world: World) -> None:
    team_a = world.teams["Riverside Primary Care A"].id
    panel = api.get(f"/care-teams/{team_a}/patients", as_="priya")
    assert panel.status_code == 200
    assert {p["id"] for p in panel.get_json()} == {world.maria, world.chen}
    assert '"total": 2' in panel.headers["X-Pagination"].replace(":", ": ").replace("  ", " ")
    assert_error(api.get(f"/care-teams/{team_a}/patients", as_="omar"), 404)
    assert_error(api.get(f"/care-teams/{team_a}/patients", as_="ana"), 404)
    assert_error(api.get(f"/patients/{world.maria}", as_="omar"), 404)
    teams = api.get("/care-teams", as_="omar").get_json()
    assert [t["name"] for t in teams] == ["Riverside Primary Care B"]


def test_a_patient_sees_who_is_on_their_care_team(api: Api, world: World) -> None:
    teams = api.get(f"/patients/{world.maria}/care-team", as_="maria").get_json()
    assert teams[0]["members"] == [
        {
            "user_id": world.users["priya"].id,
            "name": "Priya Natarajan",
            "role": "nurse",
            "since": "2026-11-25T15:00:00+00:00",
        }
    ]
    assert teams[0]["enrolled_at"] == "2026-11-25T15:00:00+00:00"


def test_every_read_by_someone_else_is_logged_and_listed_for_the_patient(
    api: Api, world: World
) -> None:
    api.get(f"/patients/{world.maria}", as_="maria")  # her own reads are not logged
    seen = api.get(f"/patients/{world.maria}", as_="ana", headers={"X-Request-ID": "req-ana-0001"})
    api.get(f"/patients/{world.maria}", as_="priya")
    api.get(f"/patients/{world.maria}/caregivers", as_="priya")  # denied: still logged
    api.get(f"/patients/{world.maria}", as_="sam")  # no relation: not Maria's business
    assert seen.headers["X-Request-ID"] == "req-ana-0001"
    log = api.get(f"/patients/{world.maria}/access-log", as_="maria").get_json()
    rows = [(e["actor_name"], e["actor_role"], e["action"], e["status"]) for e in log]
    assert rows == [
        ("Priya Natarajan", "nurse", "manage_access", 403),
        ("Priya Natarajan", "nurse", "view_patient", 200),
        ("Ana García", "daughter", "view_patient", 200),
    ]
    assert log[2]["request_id"] == "req-ana-0001"
    assert_error(api.get(f"/patients/{world.maria}/access-log", as_="ana"), 403)


def test_the_managing_caregiver_reads_the_log_of_the_person_he_manages(
    api: Api, world: World
) -> None:
    api.get(f"/patients/{world.chen}", as_="priya")
    log = api.get(f"/patients/{world.chen}/access-log?page_size=1", as_="david")
    assert log.status_code == 200
    # David's own read of the log is itself logged (he is not the patient)
    assert len(log.get_json()) == 1
    assert '"total"' in log.headers["X-Pagination"]


def test_a_refused_write_changes_nothing_and_a_good_one_is_logged(api: Api, world: World) -> None:
    r = api.patch(f"/patients/{world.chen}", as_="priya", json={"time_zone": "Asia/Tokyo"})
    assert_error(r, 403)  # the care team may not rewrite his record
    r = api.patch(f"/patients/{world.chen}", as_="david", json={"time_zone": "Nowhere/City"})
    assert_error(r, 422)
    assert api.get(f"/patients/{world.chen}", as_="david").get_json()["time_zone"] == (
        "America/Los_Angeles"
    )
    r = api.patch(f"/patients/{world.chen}", as_="david", json={"bed_time": "20:00"})
    assert r.status_code == 200
    log = api.get(f"/patients/{world.chen}/access-log", as_="david").get_json()
    assert {("edit_patient", 403, "nurse"), ("edit_patient", 200, "managing_caregiver")} <= {
        (e["action"], e["status"], e["actor_role"]) for e in log
    }


def test_coordinators_are_added_only_by_the_operator_command(ctx: Flask, world: World) -> None:
    team_b = world.teams["Riverside Primary Care B"].id
    runner = ctx.test_cli_runner()
    result = runner.invoke(
        cli,
        args=[
            "coordinator",
            "add",
            "--uid",
            "uid-kim",
            "--name",
            "Kim Lee",
            "--team-id",
            str(team_b),
            "--role",
            "social_worker",
        ],
    )
    assert result.exit_code == 0, result.output
    kim = db.session.scalar(select(User).where(User.firebase_uid == "uid-kim"))
    assert kim is not None
    member = db.session.scalar(select(CareTeamMember).where(CareTeamMember.user_id == kim.id))
    assert member is not None and member.role == "social_worker"
    bad = runner.invoke(
        cli, args=["coordinator", "add", "--uid", "x", "--name", "X", "--team-id", "9999"]
    )
    assert bad.exit_code != 0 and "no care team 9999" in bad.output
    assert isinstance(runner, CliRunner)


def test_operator_enrolls_a_patient_and_the_team_sees_them(
    ctx: Flask, api: Api, world: World
) -> None:
    team_b = world.teams["Riverside Primary Care B"].id
    assert_error(api.get(f"/patients/{world.maria}", as_="omar"), 404)
    result = ctx.test_cli_runner().invoke(
        cli, args=["team", "enroll", "--team-id", str(team_b), "--patient-id", str(world.maria)]
    )
    assert result.exit_code == 0, result.output
    assert api.get(f"/patients/{world.maria}", as_="omar").get_json()["my_role"] == "care_team"


def _log(api: Api, world: World) -> list[tuple[str, str]]:
    entries = api.get(f"/patients/{world.maria}/access-log", as_="maria").get_json()
    return [(e["actor_role"], e["action"]) for e in entries]


def test_every_read_by_someone_else_is_logged_once_with_one_label_and_own_reads_are_not(
    api: Api, world: World
) -> None:
    team = world.teams["Riverside Primary Care A"].id
    for _ in range(2):
        assert api.get("/me/today", as_="maria").status_code == 200  # her own: never logged
    assert _log(api, world) == []

    assert api.get("/patients", as_="ana").status_code == 200
    assert api.get("/me/today", as_="ana").status_code == 200
    assert api.get(f"/care-teams/{team}/patients", as_="priya").status_code == 200
    assert api.get(f"/care-teams/{team}/adherence", as_="priya").status_code == 200
    assert api.get(f"/patients/{world.maria}", as_="priya").status_code == 200
    assert sorted(_log(api, world)) == sorted(
        [
            ("daughter", "view_patient"),
            ("daughter", "view_today"),  # one row for the whole day, not one per section
            ("nurse", "view_panel"),
            ("nurse", "view_adherence"),
            ("nurse", "view_patient"),  # the same label as in her panel views
        ]
    )


def test_care_team_roles_mean_what_the_profession_does(api: Api, world: World) -> None:
    team = world.teams["Riverside Primary Care A"].id
    add_member(db.session(), team, "rosa", "Rosa Pharmacist", None, "pharmacist")
    add_member(db.session(), team, "tom", "Tom Coordinator", None, "care_coordinator")
    db.session.commit()
    plan = api.post(
        f"/patients/{world.maria}/care-plans", as_="priya", json={"title": "Diabetes care"}
    )
    assert plan.status_code == 201, plan.get_json()
    path = f"/patients/{world.maria}/care-plans/{plan.get_json()['id']}"
    etag = api.get(path, as_="rosa").headers["ETag"]  # she reads the plan
    edit = api.patch(path, as_="rosa", json={"title": "Mine"}, headers={"If-Match": etag})
    assert edit.status_code == 403  # a pharmacist does not edit the care plan
    body = {"name": "Metformin", "timing": {"code": {"text": "BID"}}}
    med = api.post(f"/patients/{world.maria}/medications", as_="priya", json=body)
    assert med.status_code == 201, med.get_json()
    meds = [med.get_json()]
    change = api.patch(
        f"/patients/{world.maria}/medications/{meds[0]['id']}",
        as_="rosa",
        json={"instructions": "With food."},
    )
    assert change.status_code == 200, change.get_json()  # she owns the medicine list
    # A coordinator coordinates; the medicine list is not hers to change.
    by_tom = api.patch(
        f"/patients/{world.maria}/medications/{meds[0]['id']}",
        as_="tom",
        json={"instructions": "Twice."},
    )
    assert by_tom.status_code == 403
    # The patient sees them on her team, with their roles.
    assert api.get(f"/patients/{world.maria}", as_="tom").status_code == 200
