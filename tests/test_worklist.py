"""The coordinator's worklist through the API: computed missed-dose and adherence items, the
urgent push, acknowledge / assign / resolve with their trail, and who sees what.

The clock starts at 2026-11-25 15:00 UTC (10:00 in New York, Maria's zone). Maria takes
Metformin at 07:30 and 19:00 since 2026-11-18 (see tests/test_adherence); in the last 7
local days she missed 3 doses, the newest yesterday at 19:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from backend import db
from backend.models import AccessLogEntry, Reminder, WorkItem
from backend.services import sweep as sweeps
from backend.services import worklist
from backend.services.careteams import add_member
from notifications import register_device
from notifications.channels.fcm import FcmChannel
from notifications.dispatch import dispatch_once
from tests.conftest import Api, Clock, World, assert_error
from tests.fcmserver import FcmServer
from tests.test_adherence import _week_of_doses
from tests.test_medications import log, ny
from tests.wiring import WIRED


def sweep(world: World, at: datetime) -> None:
    sweeps.sweep(db.session(), at, [world.maria, world.chen])
    db.session.commit()


def items(api: Api, who: str = "priya", query: str = "") -> list[dict[str, Any]]:
    r = api.get(f"/worklist{query}", as_=who)
    assert r.status_code == 200, r.get_json()
    return list(r.get_json())


def missed(api: Api, who: str = "priya", query: str = "") -> list[dict[str, Any]]:
    """The missed-dose items (the week of doses also opens a low-adherence one)."""
    r = api.get(f"/worklist?kind=missed_doses{query.replace('?', '&')}", as_=who)
    assert r.status_code == 200, r.get_json()
    return list(r.get_json())


def team_id(world: World, who: str = "priya") -> int:
    from backend.models import CareTeamMember

    return int(
        db.session.scalar(
            select(CareTeamMember.care_team_id).where(CareTeamMember.user_id == world.users[who].id)
        )
        or 0
    )


def urgent(world: World, patient: int | None = None, **extra: Any) -> WorkItem:
    item = worklist.raise_work_item(
        db.session(),
        patient_id=patient or world.maria,
        kind="safety",
        key=extra.pop("key", "checkin:1:safety"),
        title="PHQ-9 item 9 answered above 0",
        urgent=True,
        **extra,
    )
    assert item is not None
    db.session.commit()
    return item


def test_missed_doses_appear_on_priyas_worklist_with_the_medicines(
    api: Api, world: World, clock: Clock
) -> None:
    med = _week_of_doses(api, world)
    sweep(world, clock.at)

    (item,) = missed(api)
    assert item["kind"] == "missed_doses"
    assert item["patient"] == {"id": world.maria, "name": world.patients["maria"].display_name}
    assert item["title"] == "3 missed doses in the last 7 days"
    assert item["detail"]["medications"] == [
        {"medication_id": med["id"], "name": "Metformin", "missed": 3}
    ]
    assert item["status"] == "open" and item["urgent"] is False
    # the newest miss: yesterday 19:00 in New York, missed 4 hours later
    assert item["evidence_at"] == "2026-11-25T04:00:00+00:00"

    # the second sweep changes nothing: still one item, no second "opened"
    sweep(world, clock.at)
    assert len(missed(api)) == 1
    detail = api.get(f"/worklist/{item['id']}", as_="priya").get_json()
    assert [e["action"] for e in detail["events"]] == ["opened"]


def test_other_people_see_nothing_of_priyas_worklist(api: Api, world: World, clock: Clock) -> None:
    _week_of_doses(api, world)
    sweep(world, clock.at)
    (item,) = missed(api)
    for who in ("omar", "sam", "ana", "maria", "david"):
        assert missed(api, who) == []
        assert_error(api.get(f"/worklist/{item['id']}", as_=who), 404)
        assert_error(api.post(f"/worklist/{item['id']}/acknowledge", as_=who), 404)
        assert_error(
            api.post(f"/worklist/{item['id']}/resolve", as_=who, json={"note": "done"}), 404
        )
    assert_error(api.get(f"/worklist?team_id={team_id(world, 'omar')}", as_="priya"), 404)
    assert db.session.get(WorkItem, item["id"]).status == "open"  # type: ignore[union-attr]


def test_acknowledge_assign_resolve_leave_a_trail_and_an_access_log(
    api: Api, world: World, clock: Clock
) -> None:
    _week_of_doses(api, world)
    sweep(world, clock.at)
    (item,) = missed(api)
    path = f"/worklist/{item['id']}"
    nia = add_member(db.session(), team_id(world), "nia", "Nia", None, "social_worker")
    db.session.commit()

    clock.advance(minutes=5)
    r = api.post(f"{path}/acknowledge", as_="priya")
    assert r.status_code == 200
    assert r.get_json()["status"] == "acknowledged"
    assert r.get_json()["acknowledged_by"]["id"] == world.users["priya"].id

    # Omar is a coordinator, but not on a team of Maria's: refused and nothing changes
    r = api.post(f"{path}/assign", as_="priya", json={"user_id": world.users["omar"].id})
    assert assert_error(r, 422)["errors"]["json"]["user_id"]
    assert db.session.get(WorkItem, item["id"]).assigned_to_user_id is None  # type: ignore[union-attr]

    r = api.post(f"{path}/assign", as_="priya", json={"user_id": nia.user_id})
    assert r.get_json()["assigned_to"] == {"id": nia.user_id, "name": "Nia"}
    assert [i["id"] for i in missed(api, "nia", "?assigned_to=me")] == [item["id"]]
    assert missed(api, "priya", "?assigned_to=me") == []

    assert_error(api.post(f"{path}/resolve", as_="nia", json={"note": "   "}), 422)
    clock.advance(minutes=30)
    r = api.post(f"{path}/resolve", as_="nia", json={"note": "Called María; refill ordered."})
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "resolved"
    assert body["resolved_by"]["name"] == "Nia"
    assert body["resolution_note"] == "Called María; refill ordered."
    assert [(e["action"], (e["by"] or {}).get("name")) for e in body["events"]] == [
        ("opened", None),
        ("acknowledged", world.users["priya"].name),
        ("assigned", world.users["priya"].name),
        ("resolved", "Nia"),
    ]
    assert_error(api.post(f"{path}/resolve", as_="priya", json={"note": "again"}), 409)
    assert_error(api.post(f"{path}/acknowledge", as_="priya"), 409)

    # gone from the default list, still there when asked for
    assert missed(api) == []
    assert [i["id"] for i in missed(api, query="?status=resolved")] == [item["id"]]

    logged = db.session.scalars(
        select(AccessLogEntry.action).where(
            AccessLogEntry.patient_id == world.maria,
            AccessLogEntry.actor_user_id == nia.user_id,
        )
    ).all()
    assert "work_worklist" in logged and "view_worklist" in logged


def test_a_resolved_item_comes_back_only_with_a_newer_miss(
    api: Api, world: World, clock: Clock
) -> None:
    med = _week_of_doses(api, world)
    sweep(world, clock.at)
    (item,) = missed(api)
    api.post(f"/worklist/{item['id']}/resolve", as_="priya", json={"note": "Talked to her."})

    clock.advance(hours=1)
    sweep(world, clock.at)  # same misses: stays resolved
    assert missed(api) == []

    # today's 07:30 dose: never logged, and missed at 11:30 New York time
    clock.at = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    sweep(world, clock.at)
    (again,) = missed(api)
    assert again["id"] != item["id"]
    assert again["title"] == "4 missed doses in the last 7 days"
    assert again["evidence_at"] == "2026-11-25T16:30:00+00:00"

    # the doses get logged after all (with their real times): the item closes itself
    for day, hour, minute in ((22, 7, 30), (24, 7, 30), (24, 19, 0), (25, 7, 30)):
        r = log(api, world.maria, med["id"], "maria", f"late-{day}-{hour}", ny(hour, minute, day))
        assert r.status_code == 201, r.get_json()
    sweep(world, clock.at)
    assert missed(api) == []
    closed = api.get(f"/worklist/{again['id']}", as_="priya").get_json()
    assert closed["status"] == "resolved" and closed["resolved_by"] is None
    assert closed["events"][-1]["by"] is None
    assert "Fewer than 2 missed doses" in closed["resolution_note"]


def test_low_adherence_over_30_days(api: Api, world: World, clock: Clock) -> None:
    _week_of_doses(api, world)
    sweep(world, clock.at)
    (first,) = items(api, query="?kind=low_adherence")
    assert first["title"] == "43 % of days covered over the last 30 days"  # 3 of 7 days
    clock.advance(days=2)  # 27 Nov: 9 days with doses, 3 covered
    sweep(world, clock.at)
    kinds = {i["kind"]: i for i in items(api)}
    assert kinds["low_adherence"]["title"] == "33 % of days covered over the last 30 days"
    assert kinds["low_adherence"]["detail"]["days_with_doses"] == 9
    assert set(kinds) == {"missed_doses", "low_adherence"}
    assert [i["kind"] for i in items(api, query="?kind=low_adherence")] == ["low_adherence"]


def test_urgent_items_come_first_and_push_to_the_care_team(
    api: Api, world: World, clock: Clock
) -> None:
    _week_of_doses(api, world)
    sweep(world, clock.at)
    clock.advance(hours=1)
    item = urgent(world)
    listed = items(api)
    assert [(i["kind"], i["urgent"]) for i in listed] == [
        ("safety", True),
        ("missed_doses", False),
        ("low_adherence", False),
    ]
    assert [i["kind"] for i in items(api, query="?urgent=true")] == ["safety"]
    pushes = db.session.scalars(select(Reminder).where(Reminder.kind == "urgent_flag")).all()
    assert [(r.user_id, r.patient_id, r.subject) for r in pushes] == [
        (world.users["priya"].id, world.maria, {"work_item_id": item.id})
    ]
    assert pushes[0].due_at == clock.at
    # the same answer raising it again queues nothing more
    urgent(world)
    assert db.session.scalar(select(func.count()).where(Reminder.kind == "urgent_flag")) == 1


def test_the_urgent_push_reaches_priyas_phone_in_her_words_unless_already_resolved(
    api: Api,
    world: World,
    clock: Clock,
    engine: Engine,
    channel: FcmChannel,
    fcm: FcmServer,
) -> None:
    register_device(db.session(), world.users["priya"].id, "inst-priya", "priya-phone", "android")
    db.session.commit()
    urgent(world)
    while dispatch_once(engine, channel, "w1", clock.at, WIRED).claimed:
        pass
    (sent,) = fcm.received
    assert sent["token"] == "priya-phone"
    assert sent["notification"]["title"] == "Urgent: care team alert"
    # nothing about who or why on the lock screen
    assert "María" not in sent["notification"]["body"]
    assert "PHQ" not in sent["notification"]["body"]

    second = urgent(world, key="checkin:2:safety")
    r = api.post(f"/worklist/{second.id}/resolve", as_="priya", json={"note": "Spoke with her."})
    assert r.status_code == 200
    clock.advance(seconds=1)
    while dispatch_once(engine, channel, "w1", clock.at, WIRED).claimed:
        pass
    assert len(fcm.received) == 1
    db.session.expire_all()
    states = db.session.scalars(
        select(Reminder.state).where(Reminder.kind == "urgent_flag").order_by(Reminder.id)
    ).all()
    assert states == ["sent", "cancelled"]


def test_bad_filters_and_bodies_are_422(api: Api, world: World, clock: Clock) -> None:
    item = urgent(world)
    for query in ("?kind=nonsense", "?status=closed", "?assigned_to=you", "?team_id=0"):
        assert_error(api.get(f"/worklist{query}", as_="priya"), 422)
    for body in ({}, {"note": ""}, {"note": "x" * 2001}, {"note": 5}, {"note": "ok", "x": 1}):
        assert_error(api.post(f"/worklist/{item.id}/resolve", as_="priya", json=body), 422)
    assert_error(api.post(f"/worklist/{item.id}/assign", as_="priya", json={"user_id": "1"}), 422)
    assert db.session.get(WorkItem, item.id).status == "open"  # type: ignore[union-attr]


def test_filters_by_patient_and_team_and_pages(api: Api, world: World, clock: Clock) -> None:
    for n in range(3):
        worklist.raise_work_item(
            db.session(),
            patient_id=world.chen,
            kind="transition_task",
            key=f"task:{n}",
            title=f"Task {n}",
            at=clock.at + timedelta(minutes=n),
        )
    urgent(world)
    r = api.get(f"/worklist?patient_id={world.chen}&page_size=2", as_="priya")
    assert [i["title"] for i in r.get_json()] == ["Task 0", "Task 1"]
    assert '"total": 3' in r.headers["X-Pagination"]
    mine = items(api, query=f"?team_id={team_id(world)}")
    assert mine[0]["title"] == "PHQ-9 item 9 answered above 0"
    assert len(mine) == 4


def test_run_sweep_commits_in_batches(api: Api, world: World, clock: Clock, engine: Engine) -> None:
    _week_of_doses(api, world)
    db.session.commit()
    counts = sweeps.run_sweep(engine, clock.at, batch=1)
    assert counts == {"missed_doses": 1, "low_adherence": 1}
    db.session.expire_all()
    assert [i["kind"] for i in items(api)] == ["missed_doses", "low_adherence"]
