"""Care transitions: Mr. Chen comes home from hospital. The checklist, the medication changes
acknowledged at home, the follow-up and 48-hour call on the worklist, the readmission
check-ins, ER visits after discharge, and the team's readmission report.

The clock is injected (conftest ``clock``, 2026-11-25T15:00Z); nothing sleeps. SQLite, and
PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from backend import db
from backend.clock import now
from backend.models import (
    AccessLogEntry,
    CaregiverGrant,
    CheckinResponse,
    CheckinSchedule,
    Discharge,
    Encounter,
    Medication,
    MedicationChange,
    TransitionTask,
    WorkItem,
)
from backend.services.sweep import sweep
from backend.services.worklist import resolve
from tests.conftest import START, Api, Clock, World, assert_error

LA = ZoneInfo("America/Los_Angeles")
DISCHARGED = START - timedelta(hours=3)  # this morning, 04:00 in Los Angeles


def _medicine(patient_id: int, name: str, by: int) -> int:
    med = Medication(
        patient_id=patient_id,
        name=name,
        start_date=date(2026, 10, 1),
        home_time_zone="America/Los_Angeles",
        created_by_user_id=by,
        timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
    )
    db.session.add(med)
    db.session.commit()
    return med.id


def _discharge_body(world: World, **overrides: Any) -> dict[str, Any]:
    lorazepam = _medicine(world.chen, "Lorazepam 0.5 mg", world.users["david"].id)
    body: dict[str, Any] = {
        "facility": "Riverside General Hospital",
        "admitted_at": (DISCHARGED - timedelta(days=4)).isoformat(),
        "discharged_at": DISCHARGED.isoformat(),
        "reason": "Pneumonia",
        "medication_changes": [
            {
                "change": "new",
                "name": "Amoxicillin 500 mg",
                "details": "Three times a day for 5 more days.",
                "medication": {
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "end_date": "2026-11-30",
                },
            },
            {
                "change": "stopped",
                "name": "Lorazepam 0.5 mg",
                "medication_id": lorazepam,
                "details": "Stopped: falls risk.",
            },
        ],
    }
    body.update(overrides)
    return body


def _record(api: Api, world: World, as_: str = "priya", **overrides: Any) -> dict[str, Any]:
    r = api.post(
        f"/patients/{world.chen}/discharges", as_=as_, json=_discharge_body(world, **overrides)
    )
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def _apply(api: Api, world: World, discharge_id: int) -> None:
    r = api.post(
        f"/patients/{world.chen}/discharges/{discharge_id}/reconciliation", as_="priya", json={}
    )
    assert r.status_code == 200, r.get_json()


def _tasks(discharge: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(t["kind"], t["day"]): t for t in discharge["tasks"]}


def _get(api: Api, world: World, discharge_id: int, as_: str = "priya") -> dict[str, Any]:
    r = api.get(f"/patients/{world.chen}/discharges/{discharge_id}", as_=as_)
    assert r.status_code == 200, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def _sweep(world: World) -> None:
    sweep(db.session(), now(), [world.maria, world.chen])
    db.session.commit()


def _items(kind: str) -> list[WorkItem]:
    db.session.expire_all()
    return list(db.session.scalars(select(WorkItem).where(WorkItem.kind == kind)))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_discharge_starts_the_checklist_with_its_due_dates(api: Api, world: World) -> None:
    d = _record(api, world)

    tasks = _tasks(d)
    assert {kind for kind, _ in tasks} == {
        "medication_reconciliation",
        "follow_up_appointment",
        "call_48h",
        "readmission_check",
    }
    assert len(d["tasks"]) == 6
    due = {key: _at(t["due_at"]) for key, t in tasks.items()}
    assert due[("medication_reconciliation", None)] == DISCHARGED + timedelta(days=2)
    assert due[("follow_up_appointment", None)] == DISCHARGED + timedelta(days=7)
    assert due[("call_48h", None)] == DISCHARGED + timedelta(hours=48)
    for day in (7, 14, 30):
        # prompted at 10:00 in Mr. Chen's zone on day N, answerable for two days
        prompt = datetime(2026, 11, 25, 10, 0, tzinfo=LA) + timedelta(days=day)
        assert due[("readmission_check", day)] == prompt + timedelta(days=2)
    assert {t["status"] for t in d["tasks"]} == {"pending"}
    assert all(t["completed_by"] for t in d["tasks"])

    assert [(c["change"], c["name"]) for c in d["medication_changes"]] == [
        ("new", "Amoxicillin 500 mg"),
        ("stopped", "Lorazepam 0.5 mg"),
    ]
    # The stay is an encounter, ended by this discharge (the readmission math's index stay).
    encounters = api.get(f"/patients/{world.chen}/encounters", as_="david").get_json()
    assert [(e["kind"], e["discharge_id"]) for e in encounters] == [("hospital_admission", d["id"])]
    assert encounters[0]["reported_by"] == "care_team"
    assert _at(encounters[0]["end"]) == DISCHARGED

    listed = api.get(f"/patients/{world.chen}/discharges", as_="david").get_json()
    assert [x["id"] for x in listed] == [d["id"]]


def test_the_post_discharge_checkins_are_scheduled_for_days_7_14_30(api: Api, world: World) -> None:
    d = _record(api, world)
    schedules = list(
        db.session.scalars(
            select(CheckinSchedule)
            .where(CheckinSchedule.patient_id == world.chen)
            .order_by(CheckinSchedule.id)
        )
    )
    assert [s.template_code for s in schedules] == ["POST-DISCHARGE"] * 3
    checks = sorted(
        (t for t in d["tasks"] if t["kind"] == "readmission_check"), key=lambda t: t["day"]
    )
    assert [t["checkin_schedule_id"] for t in checks] == [s.id for s in schedules]
    for task, schedule in zip(checks, schedules, strict=True):
        prompt = _at(task["due_at"]) - timedelta(days=2)
        (event,) = schedule.timing["event"]
        assert event.endswith("T10:00:00-08:00")  # Mr. Chen's 10:00
        assert _at(event) == prompt
        assert schedule.expires_at == _at(task["due_at"])
        assert schedule.answer_within == timedelta(days=2)


def test_an_answered_checkin_completes_that_days_check(
    api: Api, world: World, clock: Clock
) -> None:
    d = _record(api, world)
    day7 = _tasks(d)[("readmission_check", 7)]
    prompt = _at(day7["due_at"]) - timedelta(days=2)
    clock.at = prompt + timedelta(hours=3)
    db.session.add(
        CheckinResponse(
            patient_id=world.chen,
            template_code="POST-DISCHARGE",
            answers={"any_visit": False},
            answered_by_user_id=world.users["david"].id,
            at=now(),
        )
    )
    db.session.commit()
    after = _tasks(_get(api, world, d["id"]))
    assert after[("readmission_check", 7)]["status"] == "done"
    assert _at(after[("readmission_check", 7)]["done_at"]) == now()
    assert after[("readmission_check", 14)]["status"] == "pending"
    _sweep(world)
    stored = db.session.get(TransitionTask, day7["id"])
    assert stored is not None and stored.done_at == now()


def test_david_acknowledges_each_change_and_reconciliation_is_done(
    api: Api, world: World, clock: Clock
) -> None:
    d = _record(api, world)
    new, stopped = d["medication_changes"]
    path = f"/patients/{world.chen}/discharges/{d['id']}/medication-changes"

    # The care team records the changes and may apply them to the medicine list;
    # acknowledging them is for the patient's side.
    assert_error(api.post(f"{path}/{new['id']}/acknowledge", as_="priya"), 403)
    _apply(api, world, d["id"])

    clock.advance(hours=5)
    r = api.post(f"{path}/{new['id']}/acknowledge", as_="david")
    assert r.status_code == 200
    assert r.get_json()["acknowledged_by_user_id"] == world.users["david"].id
    assert _tasks(_get(api, world, d["id"]))[("medication_reconciliation", None)]["status"] == (
        "pending"
    )

    clock.advance(hours=1)
    api.post(f"{path}/{stopped['id']}/acknowledge", as_="david")
    task = _tasks(_get(api, world, d["id"]))[("medication_reconciliation", None)]
    assert task["status"] == "done"
    assert _at(task["done_at"]) == now()
    assert task["done_by_user_id"] == world.users["david"].id

    # Again: the first acknowledgement stands.
    clock.advance(hours=1)
    again = api.post(f"{path}/{new['id']}/acknowledge", as_="david").get_json()
    assert _at(again["acknowledged_at"]) == START + timedelta(hours=5)
    # A change of another discharge, or none at all, is a 404.
    assert_error(api.post(f"{path}/987654/acknowledge", as_="david"), 404)


def test_reconciliation_overdue_goes_on_the_worklist_until_applied_and_acknowledged(
    api: Api, world: World, clock: Clock
) -> None:
    d = _record(api, world)
    clock.at = DISCHARGED + timedelta(days=2, minutes=1)
    _sweep(world)
    (item,) = [i for i in _items("transition_task") if i.key.endswith(":medication_reconciliation")]
    assert item.status == "open"
    path = f"/patients/{world.chen}/discharges/{d['id']}/medication-changes"
    for change in d["medication_changes"]:
        api.post(f"{path}/{change['id']}/acknowledge", as_="david")
    db.session.expire_all()
    assert item.status == "open"  # acknowledged at home, but the list is not changed yet
    _apply(api, world, d["id"])
    db.session.expire_all()
    assert db.session.get(WorkItem, item.id) is not None
    assert item.status == "resolved"


def test_acknowledged_at_once_by_two_people_the_sweep_completes_reconciliation(
    api: Api, world: World, clock: Clock
) -> None:
    # Two people each acknowledged the last change at the same moment: neither saw the
    # other's, so neither completed the task; the checklist and the sweep see it done.
    d = _record(api, world)
    clock.advance(hours=1)
    for change in db.session.scalars(select(MedicationChange)):
        change.applied_by_user_id, change.applied_at = world.users["priya"].id, now()
        change.acknowledged_by_user_id, change.acknowledged_at = world.users["david"].id, now()
    db.session.commit()
    task = _tasks(_get(api, world, d["id"]))[("medication_reconciliation", None)]
    assert task["status"] == "done" and _at(task["done_at"]) == now()
    _sweep(world)
    stored = db.session.get(TransitionTask, task["id"])
    assert stored is not None and stored.done_at == now()


def test_without_changes_reconciliation_is_done_at_once(api: Api, world: World) -> None:
    d = _record(api, world, medication_changes=[], admitted_at=None)
    task = _tasks(d)[("medication_reconciliation", None)]
    assert task["status"] == "done"
    assert d["medication_changes"] == []
    # No admission time given: none is shown, and the stay is dated by its end.
    assert d["admitted_at"] is None
    (stay,) = api.get(f"/patients/{world.chen}/encounters", as_="priya").get_json()
    assert _at(stay["start"]) == _at(stay["end"]) == DISCHARGED


def _book(api: Api, world: World, start: datetime, type_: str = "in_person") -> dict[str, Any]:
    body = {
        "title": "Post-hospital follow-up",
        "type": type_,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
    }
    if type_ == "telehealth":
        body["video_url"] = "https://video.example.org/riverside"
    else:
        body["location"] = "Riverside Primary Care"
    r = api.post(f"/patients/{world.chen}/appointments", as_="david", json=body)
    assert r.status_code == 201, r.get_json()
    result: dict[str, Any] = r.get_json()
    return result


def test_no_follow_up_by_day_2_opens_an_item_and_booking_resolves_it(
    api: Api, world: World, clock: Clock
) -> None:
    d = _record(api, world)
    clock.at = DISCHARGED + timedelta(days=1)
    _sweep(world)
    assert _items("no_follow_up") == []

    clock.at = DISCHARGED + timedelta(days=2)
    _sweep(world)
    (item,) = _items("no_follow_up")
    assert item.patient_id == world.chen
    assert item.key == f"no_follow_up:{d['id']}"
    assert (
        item.title == "No follow-up booked 2 days after discharge from Riverside General Hospital"
    )
    assert item.urgent is False
    assert item.status == "open"
    assert item.evidence_at == DISCHARGED + timedelta(days=2)
    assert item.detail["discharge_id"] == d["id"]
    _sweep(world)  # sweeping again keeps the one item
    assert len(_items("no_follow_up")) == 1

    # A lab draw is not a follow-up visit.
    _book(api, world, now() + timedelta(days=1), type_="lab")
    _sweep(world)
    assert _items("no_follow_up")[0].status == "open"

    visit = _book(api, world, now() + timedelta(days=2))
    # The checklist sees the booking at once; the sweep closes the item.
    task = _tasks(_get(api, world, d["id"]))[("follow_up_appointment", None)]
    assert task["status"] == "done"
    assert task["appointment_id"] == visit["id"]
    _sweep(world)
    (item,) = _items("no_follow_up")
    assert item.status == "resolved"
    assert item.resolved_by_user_id is None  # the system closed it
    assert item.resolution_note and "Follow-up booked" in item.resolution_note

    # Cancelled: the follow-up is missing again, and so is the item.
    clock.advance(hours=2)
    api.post(f"/patients/{world.chen}/appointments/{visit['id']}/cancel", as_="david", json={})
    _sweep(world)
    task = _tasks(_get(api, world, d["id"]))[("follow_up_appointment", None)]
    assert task["status"] == "pending"
    items = _items("no_follow_up")
    assert sorted(i.status for i in items) == ["open", "resolved"]


def test_a_visit_booked_before_day_2_means_no_item(api: Api, world: World, clock: Clock) -> None:
    _record(api, world)
    _book(api, world, now() + timedelta(days=3), type_="telehealth")
    clock.at = DISCHARGED + timedelta(days=3)
    _sweep(world)
    assert _items("no_follow_up") == []


def test_the_48h_call_is_on_the_worklist_and_resolving_it_completes_the_task(
    api: Api, world: World, clock: Clock
) -> None:
    d = _record(api, world)
    (item,) = _items("transition_task")
    assert item.key == f"transition:{d['id']}:call_48h"
    assert item.patient_id == world.chen
    assert item.urgent is False
    assert item.detail["due_at"] == (DISCHARGED + timedelta(hours=48)).isoformat()
    assert _tasks(d)[("call_48h", None)]["work_item_id"] == item.id

    clock.at = DISCHARGED + timedelta(hours=49)
    assert _tasks(_get(api, world, d["id"]))[("call_48h", None)]["status"] == "overdue"

    clock.advance(hours=1)
    assert resolve(db.session(), item, world.users["priya"].id, "Called, doing well")
    db.session.commit()
    task = _tasks(_get(api, world, d["id"]))[("call_48h", None)]
    assert task["status"] == "done"
    # the coordinator's own words stay on the worklist; David sees only that it was done
    assert task["note"] == "48-hour call made."
    davids = _tasks(_get(api, world, d["id"], as_="david"))[("call_48h", None)]
    assert "doing well" not in json.dumps(davids)
    assert task["done_by_user_id"] == world.users["priya"].id
    _sweep(world)
    stored = db.session.get(TransitionTask, task["id"])
    assert stored is not None and stored.done_at == now()
    assert [i.status for i in _items("transition_task") if i.key.endswith("call_48h")] == [
        "resolved"
    ]


def _encounter(api: Api, world: World, patient_id: int, **fields: Any) -> Any:
    body = {"kind": "er_visit", "facility": "Riverside General ER", "reason": "Fall"}
    body.update(fields)
    return api.post(f"/patients/{patient_id}/encounters", as_="priya", json=body)


def test_an_er_visit_on_day_10_goes_on_the_worklist(api: Api, world: World, clock: Clock) -> None:
    d = _record(api, world)
    clock.at = DISCHARGED + timedelta(days=10, hours=2)
    r = _encounter(api, world, world.chen, start=(now() - timedelta(hours=1)).isoformat())
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["reported_by"] == "care_team"
    (item,) = _items("encounter")
    assert item.patient_id == world.chen
    assert item.urgent is False
    assert item.key == f"encounter:{r.get_json()['id']}"
    assert item.detail["discharge_id"] == d["id"]
    assert item.detail["days_after_discharge"] == 10
    assert item.title.startswith("ER visit at Riverside General ER 10 days after discharge")

    # The next day: "1 day", not "1 days".
    clock.at = DISCHARGED + timedelta(days=1, hours=3)
    r = _encounter(api, world, world.chen, start=(now() - timedelta(hours=1)).isoformat())
    assert r.status_code == 201, r.get_json()
    first = next(i for i in _items("encounter") if i.key == f"encounter:{r.get_json()['id']}")
    assert first.title.startswith("ER visit at Riverside General ER 1 day after discharge")
    clock.at = DISCHARGED + timedelta(days=10, hours=2)

    # An ER visit of someone not discharged lately is recorded, and no item.
    r = _encounter(api, world, world.maria, start=(now() - timedelta(hours=1)).isoformat())
    assert r.status_code == 201
    assert len(_items("encounter")) == 2
    # Nor one more than 30 days after the discharge.
    clock.at = DISCHARGED + timedelta(days=31)
    _encounter(api, world, world.chen, start=now().isoformat())
    assert len(_items("encounter")) == 2


def test_the_report_shows_readmissions_and_er_visits_with_the_patients_behind_them(
    api: Api, world: World, clock: Clock
) -> None:
    team_id = world.teams["Riverside Primary Care A"].id
    first = _record(api, world)
    maria = api.post(
        f"/patients/{world.maria}/discharges",
        as_="priya",
        json={"facility": "St. Luke's", "discharged_at": (START - timedelta(days=1)).isoformat()},
    )
    assert maria.status_code == 201
    # Mr. Chen has an ER visit on day 5 and is back in hospital on day 12.
    clock.at = DISCHARGED + timedelta(days=5)
    er = _encounter(api, world, world.chen, start=now().isoformat()).get_json()
    clock.at = DISCHARGED + timedelta(days=12, hours=6)
    stay = _encounter(
        api, world, world.chen, kind="hospital_admission", start=now().isoformat()
    ).get_json()
    assert {i.detail["encounter_id"] for i in _items("encounter")} == {er["id"], stay["id"]}

    r = api.get(f"/care-teams/{team_id}/transitions-report?days=30", as_="priya")
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    assert report["team_id"] == team_id
    assert report["index_discharges"] == 2
    assert report["readmission"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    assert report["er_visit"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    lines = {line["discharge_id"]: line for line in report["discharges"]}
    readmitted = lines[first["id"]]
    assert readmitted["patient_id"] == world.chen and readmitted["patient_name"] == "Wei Chen"
    assert readmitted["readmissions"] == [
        {"encounter_id": stay["id"], "facility": "Riverside General ER", "start": stay["start"]}
    ]
    assert [x["encounter_id"] for x in readmitted["er_visits"]] == [er["id"]]
    assert readmitted["window_open"] is True
    assert lines[maria.get_json()["id"]]["readmissions"] == []
    # The patients the report names see it in their access log.
    logged = db.session.scalars(
        select(AccessLogEntry.patient_id).where(AccessLogEntry.action == "view_transitions_report")
    ).all()
    assert sorted(logged) == sorted([world.maria, world.chen])
    mine = api.get("/me/transitions-report?days=30", as_="priya").get_json()
    assert mine["readmission"] == report["readmission"] and mine["team_id"] is None

    # Discharged from that stay on day 15: one more index discharge, the same readmission.
    clock.at = DISCHARGED + timedelta(days=16)
    second = _record(
        api,
        world,
        encounter_id=stay["id"],
        discharged_at=(DISCHARGED + timedelta(days=15)).isoformat(),
        admitted_at=None,
        medication_changes=[],
    )
    report = api.get(f"/care-teams/{team_id}/transitions-report?days=30", as_="priya").get_json()
    assert report["readmission"] == {"numerator": 1, "denominator": 3, "rate": 0.3333}
    lines = {line["discharge_id"]: line for line in report["discharges"]}
    assert [x["encounter_id"] for x in lines[first["id"]]["readmissions"]] == [stay["id"]]
    assert lines[second["id"]]["readmissions"] == []

    # Another team's coordinator, and a stranger: no such team.
    assert_error(api.get(f"/care-teams/{team_id}/transitions-report", as_="omar"), 404)
    assert_error(api.get(f"/care-teams/{team_id}/transitions-report", as_="sam"), 404)
    assert api.get("/me/transitions-report", as_="omar").get_json()["index_discharges"] == 0
    # Bad period: 422 naming the field.
    body = assert_error(
        api.get(f"/care-teams/{team_id}/transitions-report?days=0", as_="priya"), 422
    )
    assert "days" in body["errors"]["query"]


def test_report_counts_a_closed_window_and_leaves_old_discharges_out(
    api: Api, world: World, clock: Clock
) -> None:
    _record(api, world, medication_changes=[])
    team_id = world.teams["Riverside Primary Care A"].id
    clock.at = DISCHARGED + timedelta(days=45)
    report = api.get(f"/care-teams/{team_id}/transitions-report", as_="priya").get_json()
    assert report["days"] == 90
    assert report["open_windows"] == 0
    assert report["readmission"] == {"numerator": 0, "denominator": 1, "rate": 0.0}
    clock.at = DISCHARGED + timedelta(days=91)
    report = api.get(f"/care-teams/{team_id}/transitions-report", as_="priya").get_json()
    assert report["readmission"] == {"numerator": 0, "denominator": 0, "rate": None}


def test_who_sees_what(api: Api, world: World) -> None:
    maria_med = _medicine(world.maria, "Metformin 500 mg", world.users["maria"].id)
    body = {
        "facility": "St. Luke's",
        "discharged_at": (START - timedelta(hours=2)).isoformat(),
        "medication_changes": [
            {"change": "changed", "name": "Metformin 1000 mg", "medication_id": maria_med}
        ],
    }
    r = api.post(f"/patients/{world.maria}/discharges", as_="maria", json=body)
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    path = f"/patients/{world.maria}/discharges/{d['id']}"

    # Ana (view_care_plan and view_medications) sees the discharge and its changes, but
    # neither records transitions nor acknowledges changes (no manage_medications).
    seen = api.get(path, as_="ana").get_json()
    assert [c["name"] for c in seen["medication_changes"]] == ["Metformin 1000 mg"]
    assert_error(api.post(f"/patients/{world.maria}/discharges", as_="ana", json=body), 403)
    visit = {"kind": "er_visit", "facility": "St. Luke's ER", "start": START.isoformat()}
    assert_error(api.post(f"/patients/{world.maria}/encounters", as_="ana", json=visit), 403)
    change = d["medication_changes"][0]["id"]
    ack = f"{path}/medication-changes/{change}/acknowledge"
    assert_error(api.post(ack, as_="ana"), 403)
    assert api.post(ack, as_="maria").status_code == 200

    # A caregiver with view_care_plan alone sees the checklist, not the medicines.
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == world.users["ana"].id)
    ).one()
    grant.permissions = ["view_care_plan"]
    db.session.commit()
    seen = api.get(path, as_="ana").get_json()
    assert seen["medication_changes"] is None
    assert len(seen["tasks"]) == 6
    listed = api.get(f"/patients/{world.maria}/discharges", as_="ana").get_json()
    assert listed[0]["medication_changes"] is None
    grant.permissions = ["view_appointments"]
    db.session.commit()
    assert_error(api.get(path, as_="ana"), 403)

    # No relation: no such patient, whoever asks and whatever the id.
    for who in ("omar", "sam"):
        assert_error(api.get(path, as_=who), 404)
        assert_error(api.get(f"/patients/{world.maria}/encounters", as_=who), 404)
    # Another patient's discharge under this patient: no such discharge.
    assert_error(api.get(f"/patients/{world.chen}/discharges/{d['id']}", as_="priya"), 404)


def _stored() -> dict[str, int]:
    db.session.expire_all()
    return {
        model.__name__: int(db.session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Discharge, Encounter, MedicationChange, TransitionTask, WorkItem)
    }


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"discharged_at": (START + timedelta(hours=1)).isoformat()}, ["discharged_at"]),
        ({"facility": ""}, ["facility"]),
        ({"facility": "  "}, ["facility"]),
        (
            {"admitted_at": (DISCHARGED + timedelta(hours=1)).isoformat()},
            ["admitted_at"],
        ),
        (
            {"medication_changes": [{"change": "paused", "name": "Donepezil"}]},
            ["medication_changes", "0", "change"],
        ),
        (
            {"medication_changes": [{"change": "new", "name": "X", "medication_id": 987654}]},
            ["medication_changes", "0", "medication_id"],
        ),
        ({"discharged_at": "2026-11-25T10:00:00"}, ["discharged_at"]),  # no offset
        ({"encounter_id": 987654}, ["encounter_id"]),
        ({"colour": "blue"}, ["colour"]),
    ],
)
def test_bad_discharges_are_422_naming_the_field_and_store_nothing(
    api: Api, world: World, change: dict[str, Any], where: list[str]
) -> None:
    body = _discharge_body(world)
    body.update(change)
    before = _stored()
    body_out = assert_error(
        api.post(f"/patients/{world.chen}/discharges", as_="priya", json=body), 422
    )
    errors: Any = body_out["errors"]["json"]
    for key in where:
        errors = errors[key]
    assert errors
    assert _stored() == before


def test_another_patients_medicine_is_not_this_patients(api: Api, world: World) -> None:
    theirs = _medicine(world.maria, "Metformin 500 mg", world.users["maria"].id)
    body = _discharge_body(
        world,
        medication_changes=[{"change": "stopped", "name": "Metformin", "medication_id": theirs}],
    )
    before = _stored()
    out = assert_error(api.post(f"/patients/{world.chen}/discharges", as_="priya", json=body), 422)
    assert out["errors"]["json"]["medication_changes"]["0"]["medication_id"]
    assert _stored() == before


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"kind": "clinic_visit", "start": START.isoformat()}, "kind"),
        ({"start": (START + timedelta(days=1)).isoformat()}, "start"),
        (
            {"start": START.isoformat(), "end": (START - timedelta(hours=1)).isoformat()},
            "end",
        ),
        ({"start": START.isoformat(), "facility": ""}, "facility"),
        ({"start": START.isoformat(), "reported_by": "neighbour"}, "reported_by"),
    ],
)
def test_bad_encounters_are_422(api: Api, world: World, fields: dict[str, Any], where: str) -> None:
    before = _stored()
    out = assert_error(_encounter(api, world, world.chen, **fields), 422)
    assert where in out["errors"]["json"]
    assert _stored() == before


def test_a_discharge_closes_a_stay_recorded_before(api: Api, world: World) -> None:
    admitted = START - timedelta(days=3)
    stay = _encounter(
        api, world, world.chen, kind="hospital_admission", start=admitted.isoformat()
    ).get_json()
    assert stay["end"] is None and stay["discharge_id"] is None
    d = _record(api, world, encounter_id=stay["id"], admitted_at=None, medication_changes=[])
    assert d["encounter_id"] == stay["id"]
    assert _at(d["admitted_at"]) == admitted
    (listed,) = api.get(f"/patients/{world.chen}/encounters", as_="priya").get_json()
    assert listed["discharge_id"] == d["id"] and _at(listed["end"]) == DISCHARGED
    # A stay ends once.
    out = assert_error(
        api.post(
            f"/patients/{world.chen}/discharges",
            as_="priya",
            json={
                "facility": "Riverside General Hospital",
                "discharged_at": DISCHARGED.isoformat(),
                "encounter_id": stay["id"],
            },
        ),
        422,
    )
    assert "encounter_id" in out["errors"]["json"]
