"""Care plans: Priya (nurse) and María edit, Ana (daughter) reads; ETags keep one editor
from overwriting the other; every change is a revision; one active plan per patient."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from sqlalchemy import select

from backend import db
from backend.api.etags import EtagBlueprint
from backend.models import CarePlan, CarePlanRevision
from tests.conftest import Api, Clock, World, assert_error

DIABETES = {
    "text": "Type 2 diabetes",
    "code": {"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes type 2"},
    "status": "active",
}
HBA1C = {
    "description": "Bring blood sugar into range",
    "target": {
        "text": "HbA1c below 7%",
        "measure": "HbA1c",
        "comparator": "<",
        "value": 7,
        "unit": "%",
    },
    "due_date": "2027-03-01",
    "status": "active",
}


def _plan_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "Diabetes and blood pressure",
        "instructions": "Check your sugar before breakfast. Walk 20 minutes after lunch.",
        "conditions": [DIABETES],
        "goals": [HBA1C],
        "activities": [
            {
                "description": "Check blood sugar",
                "frequency": "daily before breakfast",
                "responsible": {"kind": "patient"},
            },
        ],
    }
    return {**body, **overrides}


def _create(api: Api, patient_id: int, as_: str = "priya", **overrides: Any) -> Any:
    r = api.post(f"/patients/{patient_id}/care-plans", as_=as_, json=_plan_body(**overrides))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r


def _path(world: World, plan_id: int) -> str:
    return f"/patients/{world.maria}/care-plans/{plan_id}"


def test_priya_and_maria_edit_and_ana_only_reads(api: Api, world: World) -> None:
    created = _create(api, world.maria)
    plan = created.get_json()
    assert created.headers["ETag"]
    assert plan["status"] == "active" and plan["version"] == 1
    assert [g["status"] for g in plan["goals"]] == ["active"]
    assert plan["goals"][0]["id"] and plan["activities"][0]["id"]

    seen = api.get(_path(world, plan["id"]), as_="ana")
    assert seen.status_code == 200
    assert seen.get_json()["instructions"].startswith("Check your sugar")
    etag = seen.headers["ETag"]
    assert etag == created.headers["ETag"]  # the same tag whoever reads it

    refused = api.patch(
        _path(world, plan["id"]), as_="ana", json={"title": "Mine now"}, headers={"If-Match": etag}
    )
    assert_error(refused, 403)

    changed = api.patch(
        _path(world, plan["id"]),
        as_="maria",
        json={"instructions": "Walk 30 minutes after lunch."},
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200
    assert changed.get_json()["version"] == 2
    assert changed.get_json()["title"] == "Diabetes and blood pressure"
    assert changed.headers["ETag"] not in (etag, "")
    again = api.get(
        _path(world, plan["id"]), as_="ana", headers={"If-None-Match": changed.headers["ETag"]}
    )
    assert again.status_code == 304


def test_the_second_of_two_editors_with_the_same_etag_gets_412_and_the_first_change_stays(
    api: Api, world: World
) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    etag = api.get(_path(world, plan_id), as_="maria").headers["ETag"]
    assert api.get(_path(world, plan_id), as_="priya").headers["ETag"] == etag

    first = api.patch(
        _path(world, plan_id),
        as_="priya",
        json={"instructions": "Insulin at bedtime."},
        headers={"If-Match": etag},
    )
    assert first.status_code == 200
    second = api.patch(
        _path(world, plan_id),
        as_="maria",
        json={"instructions": "No insulin.", "title": "My plan"},
        headers={"If-Match": etag},
    )
    body = assert_error(second, 412)
    assert "nothing was saved" in body["message"]

    now = api.get(_path(world, plan_id), as_="maria").get_json()
    assert (now["instructions"], now["title"], now["version"]) == (
        "Insulin at bedtime.",
        "Diabetes and blood pressure",
        2,
    )


def test_an_etag_cannot_be_computed_without_reading(api: Api, world: World) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    guessed = EtagBlueprint.tag({"care_plan": plan_id, "version": 1})
    r = api.patch(
        _path(world, plan_id), as_="priya", json={"title": "X"}, headers={"If-Match": guessed}
    )
    assert_error(r, 412)
    plan = api.get(_path(world, plan_id), as_="priya").get_json()
    assert (plan["title"], plan["version"]) == ("Diabetes and blood pressure", 1)


def test_a_change_without_if_match_is_428_and_changes_nothing(api: Api, world: World) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    body = assert_error(api.patch(_path(world, plan_id), as_="priya", json={"title": "X"}), 428)
    assert "If-Match" in body["message"]
    plan = api.get(_path(world, plan_id), as_="priya").get_json()
    assert (plan["title"], plan["version"]) == ("Diabetes and blood pressure", 1)


def test_without_access_it_is_404_whether_or_not_if_match_is_sent(api: Api, world: World) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    etag = api.get(_path(world, plan_id), as_="priya").headers["ETag"]
    for headers in ({}, {"If-Match": etag}):
        r = api.patch(_path(world, plan_id), as_="sam", json={"title": "X"}, headers=headers)
        assert assert_error(r, 404)["message"] == "No such patient."
    # a plan id of another patient is not found under this one
    other = f"/patients/{world.chen}/care-plans/{plan_id}"
    assert_error(api.get(other, as_="priya"), 404)
    assert_error(
        api.patch(other, as_="priya", json={"title": "X"}, headers={"If-Match": etag}), 404
    )


def test_revisions_list_who_changed_what_newest_first(api: Api, world: World, clock: Clock) -> None:
    plan = _create(api, world.maria).get_json()
    clock.advance(hours=2)
    goal = {**plan["goals"][0], "status": "achieved"}
    etag = api.get(_path(world, plan["id"]), as_="maria").headers["ETag"]
    r = api.patch(
        _path(world, plan["id"]), as_="maria", json={"goals": [goal]}, headers={"If-Match": etag}
    )
    assert r.status_code == 200

    revisions = api.get(_path(world, plan["id"]) + "/revisions", as_="ana")
    assert revisions.status_code == 200
    newest, first = revisions.get_json()
    assert (newest["version"], newest["changed_by_name"]) == (2, "María")
    assert newest["changed_by_user_id"] == world.users["maria"].id
    assert newest["changes"] == {
        "goals": {"from": plan["goals"], "to": [goal]},
    }
    assert newest["at"] > first["at"]
    assert (first["version"], first["changed_by_name"]) == (1, "Priya Natarajan")
    assert first["changes"]["title"] == {"from": None, "to": "Diabetes and blood pressure"}
    assert set(first["changes"]) == {
        "title",
        "instructions",
        "conditions",
        "goals",
        "activities",
        "status",
    }


def test_a_change_to_nothing_makes_no_revision(api: Api, world: World) -> None:
    plan = _create(api, world.maria).get_json()
    etag = api.get(_path(world, plan["id"]), as_="priya").headers["ETag"]
    same = api.patch(
        _path(world, plan["id"]),
        as_="priya",
        json={"title": plan["title"], "goals": plan["goals"]},
        headers={"If-Match": etag},
    )
    assert same.status_code == 200
    assert (same.get_json()["version"], same.headers["ETag"]) == (1, etag)
    assert len(api.get(_path(world, plan["id"]) + "/revisions", as_="priya").get_json()) == 1


def test_a_new_plan_completes_the_old_one_which_is_kept_read_only(api: Api, world: World) -> None:
    old = _create(api, world.maria).get_json()
    old_etag = api.get(_path(world, old["id"]), as_="priya").headers["ETag"]
    new = _create(api, world.maria, as_="maria", title="After the hospital stay").get_json()

    plans = api.get(f"/patients/{world.maria}/care-plans", as_="ana").get_json()
    assert [(p["id"], p["status"]) for p in plans] == [
        (new["id"], "active"),
        (old["id"], "completed"),
    ]
    assert plans[1]["completed_at"] is not None
    active = api.get(f"/patients/{world.maria}/care-plan", as_="ana")
    assert active.get_json()["id"] == new["id"]
    assert active.headers["ETag"] == api.get(_path(world, new["id"]), as_="ana").headers["ETag"]
    completed = api.get(f"/patients/{world.maria}/care-plans?status=completed", as_="priya")
    assert [p["id"] for p in completed.get_json()] == [old["id"]]

    closing = api.get(_path(world, old["id"]) + "/revisions", as_="priya").get_json()[0]
    assert closing["changes"] == {"status": {"from": "active", "to": "completed"}}
    assert closing["changed_by_user_id"] == world.users["maria"].id

    stale = api.patch(
        _path(world, old["id"]), as_="priya", json={"title": "X"}, headers={"If-Match": old_etag}
    )
    assert_error(stale, 412)  # it changed (completed) since Priya read it
    etag = api.get(_path(world, old["id"]), as_="priya").headers["ETag"]
    kept = api.patch(
        _path(world, old["id"]), as_="priya", json={"title": "X"}, headers={"If-Match": etag}
    )
    assert_error(kept, 409)


def test_completing_the_plan_leaves_the_patient_with_none_active(api: Api, world: World) -> None:
    assert_error(api.get(f"/patients/{world.chen}/care-plan", as_="david"), 404)
    plan = _create(api, world.chen, as_="david", activities=[]).get_json()
    path = f"/patients/{world.chen}/care-plans/{plan['id']}"
    etag = api.get(path, as_="priya").headers["ETag"]
    done = api.patch(path, as_="priya", json={"status": "completed"}, headers={"If-Match": etag})
    assert done.status_code == 200
    assert done.get_json()["completed_at"] is not None
    assert_error(api.get(f"/patients/{world.chen}/care-plan", as_="david"), 404)


def test_a_named_responsible_person_must_have_access_to_the_patient(api: Api, world: World) -> None:
    def activity(kind: str, persona: str) -> dict[str, Any]:
        return {
            "description": "Drive to the eye exam",
            "frequency": "once",
            "responsible": {"kind": kind, "user_id": world.users[persona].id},
        }

    for kind, persona in [
        ("caregiver", "sam"),
        ("caregiver", "priya"),
        ("care_team_member", "omar"),
        ("caregiver", "david"),
    ]:
        r = api.post(
            f"/patients/{world.maria}/care-plans",
            as_="priya",
            json=_plan_body(activities=[activity(kind, persona)]),
        )
        body = assert_error(r, 422)
        assert body["errors"]["json"]["activities"]["0"]["responsible"]["user_id"], persona
    assert api.get(f"/patients/{world.maria}/care-plans", as_="priya").get_json() == []

    ana = world.users["ana"].id
    ok = _create(
        api,
        world.maria,
        activities=[
            activity("caregiver", "ana"),
            activity("care_team_member", "priya"),
            {
                "description": "Weekly pill box",
                "responsible": {"kind": "caregiver", "name": "Tía Rosa"},
            },
            {
                "description": "Pick up the prescription",
                "responsible": {"kind": "caregiver", "user_id": ana, "name": "Rita"},
            },
        ],
    ).get_json()
    # Outside the app by name only; with a user_id, always that person's own name.
    assert [a["responsible"].get("name") for a in ok["activities"]] == [
        "Ana García",
        "Priya Natarajan",
        "Tía Rosa",
        "Ana García",
    ]


def test_someone_named_before_their_access_ended_does_not_block_other_edits(
    api: Api, world: World
) -> None:
    plan = _create(
        api,
        world.maria,
        activities=[
            {
                "description": "Call on Sundays",
                "responsible": {"kind": "caregiver", "user_id": world.users["ana"].id},
            },
        ],
    ).get_json()
    grant = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()[0]
    revoked = api.delete(f"/patients/{world.maria}/caregivers/{grant['id']}", as_="maria")
    assert revoked.status_code == 204
    etag = api.get(_path(world, plan["id"]), as_="priya").headers["ETag"]
    extra = {"description": "Walk", "frequency": "daily", "responsible": {"kind": "patient"}}
    r = api.patch(
        _path(world, plan["id"]),
        as_="priya",
        json={"activities": [*plan["activities"], extra]},
        headers={"If-Match": etag},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    ana_again = {k: v for k, v in plan["activities"][0].items() if k != "id"}
    r = api.patch(
        _path(world, plan["id"]),
        as_="priya",
        json={"activities": [ana_again]},
        headers={"If-Match": r.headers["ETag"]},
    )
    assert_error(r, 422)  # naming her anew is refused


def test_goal_and_activity_ids_stay_the_same_across_edits(api: Api, world: World) -> None:
    plan = _create(api, world.maria).get_json()
    kept = {**plan["goals"][0], "status": "achieved"}
    added = {
        "description": "Lose 3 kg",
        "target": {"text": "72 kg", "measure": "weight", "value": 72, "unit": "kg"},
    }
    etag = api.get(_path(world, plan["id"]), as_="priya").headers["ETag"]
    goals = api.patch(
        _path(world, plan["id"]),
        as_="priya",
        json={"goals": [kept, added]},
        headers={"If-Match": etag},
    ).get_json()["goals"]
    assert goals[0]["id"] == plan["goals"][0]["id"]
    assert goals[1]["id"] not in ("", None, goals[0]["id"])
    assert (goals[1]["status"], goals[1].get("due_date")) == (
        "proposed",
        None,
    )
    assert (
        api.get(_path(world, plan["id"]), as_="ana").get_json()["activities"]
        == (plan["activities"])
    )


BAD_PATCHES = [
    {"colour": "blue"},
    {"title": ""},
    {"title": " padded "},
    {"title": "Nul\x00inside"},
    {"status": "paused"},
    {"conditions": [{"text": "Asthma", "status": "cured"}]},
    {"conditions": [{"text": "Asthma", "code": {"system": "http://snomed.info/sct"}}]},
    {"goals": [{**HBA1C, "status": "done"}]},
    {"goals": [{**HBA1C, "due_date": "01/03/2027"}]},
    {"goals": [{**HBA1C, "due_date": "2027-02-30"}]},
    {"goals": [{**HBA1C, "due_date": "20270301"}]},
    {"goals": [{**HBA1C, "due_date": "2027-03-01\n"}]},
    {"goals": [{"description": "No target"}]},
    {"goals": [{**HBA1C, "target": {"text": "7", "value": 7}}]},
    {"goals": [{**HBA1C, "id": "never-given"}]},
    {"goals": [HBA1C] * 51},
    {"activities": [{"description": "Walk", "responsible": {"kind": "neighbour"}}]},
    {"activities": [{"description": "Walk", "responsible": {"kind": "caregiver"}}]},
    {"activities": [{"description": "Walk", "responsible": {"kind": "patient", "user_id": 1}}]},
    {
        "activities": [
            {"description": "Walk", "status": "later", "responsible": {"kind": "patient"}}
        ]
    },
    {"activities": [{"description": "Walk", "responsible": {"kind": "caregiver", "user_id": "7"}}]},
]


def test_bad_input_is_422_and_changes_nothing(api: Api, world: World) -> None:
    plan = _create(api, world.maria).get_json()
    etag = api.get(_path(world, plan["id"]), as_="priya").headers["ETag"]
    for bad in BAD_PATCHES:
        r = api.patch(_path(world, plan["id"]), as_="priya", json=bad, headers={"If-Match": etag})
        assert_error(r, 422)
    goal_id = plan["goals"][0]["id"]
    twice = api.patch(
        _path(world, plan["id"]),
        as_="priya",
        json={"goals": [{**HBA1C, "id": goal_id}, {**HBA1C, "id": goal_id}]},
        headers={"If-Match": etag},
    )
    assert "once" in str(assert_error(twice, 422)["errors"])
    after = api.get(_path(world, plan["id"]), as_="priya")
    assert after.headers["ETag"] == etag
    assert after.get_json() == plan
    assert_error(api.post(f"/patients/{world.maria}/care-plans", as_="priya", json={}), 422)
    assert len(api.get(f"/patients/{world.maria}/care-plans", as_="priya").get_json()) == 1


def test_editors_at_the_same_moment_with_the_same_etag_save_once(
    ctx: Flask, api: Api, world: World
) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    etag = api.get(_path(world, plan_id), as_="priya").headers["ETag"]
    barrier = threading.Barrier(4)
    results: dict[str, int] = {}

    def edit(who: str, n: int) -> None:
        client = Api(ctx.test_client(), ctx, world)
        barrier.wait()
        r = client.patch(
            _path(world, plan_id),
            as_=who,
            json={"instructions": f"Edit {n}"},
            headers={"If-Match": etag},
        )
        results[f"{who}{n}"] = r.status_code

    threads = [
        threading.Thread(target=edit, args=(w, n))
        for n, w in enumerate(("maria", "priya", "maria", "priya"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == [200, 412, 412, 412], results
    db.session.expire_all()
    versions = db.session.scalars(
        select(CarePlanRevision.version).where(CarePlanRevision.plan_id == plan_id)
    ).all()
    assert sorted(versions) == [1, 2]
    plan = db.session.get(CarePlan, plan_id)
    assert plan is not None and plan.version == 2


def test_if_match_star_is_not_a_read_and_overwrites_nothing(api: Api, world: World) -> None:
    plan_id = _create(api, world.maria).get_json()["id"]
    r = api.patch(
        _path(world, plan_id), as_="priya", json={"title": "Unseen"}, headers={"If-Match": "*"}
    )
    body = assert_error(r, 428)
    assert "If-Match: *" in body["message"]
    assert api.get(_path(world, plan_id), as_="maria").get_json()["title"] != "Unseen"
