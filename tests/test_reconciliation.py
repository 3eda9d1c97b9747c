"""Medication reconciliation after a discharge: Mr. Chen comes home with Furosemide new and
Lorazepam stopped. David (his managing caregiver) or the care team applies the changes to
his medicine list in one step that first says what it will do; the stopped medicine's
reminders stop in the same transaction, the new one is created with its Timing, and the
checklist's reconciliation task is done once every change is applied and acknowledged.

Injected clock (2026-11-25T15:00Z); SQLite, and PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from backend import db
from backend.models import Medication, Reminder
from tests.conftest import START, Api, Clock, World, assert_error

FUROSEMIDE_TIMING = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["CM"]}}


def _add(api: Api, world: World, name: str, strength: str) -> int:
    r = api.post(
        f"/patients/{world.chen}/medications",
        as_="david",
        json={
            "name": name,
            "strength": strength,
            "start_date": "2026-10-01",
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        },
    )
    assert r.status_code == 201, r.get_json()
    med_id: int = r.get_json()["id"]
    return med_id


def _discharge(api: Api, world: World, changes: list[dict[str, Any]]) -> dict[str, Any]:
    r = api.post(
        f"/patients/{world.chen}/discharges",
        as_="priya",
        json={
            "facility": "Riverside General Hospital",
            "discharged_at": (START - timedelta(hours=3)).isoformat(),
            "medication_changes": changes,
        },
    )
    assert r.status_code == 201, r.get_json()
    body: dict[str, Any] = r.get_json()
    return body


def _chen_home(api: Api, world: World) -> tuple[dict[str, Any], int, int]:
    lorazepam = _add(api, world, "Lorazepam", "0.5 mg")
    metformin = _add(api, world, "Metformin", "500 mg")
    discharge = _discharge(
        api,
        world,
        [
            {
                "change": "new",
                "name": "Furosemide",
                "details": "One tablet every morning; weigh yourself daily.",
                "medication": {"strength": "20 mg", "timing": FUROSEMIDE_TIMING},
            },
            {"change": "stopped", "name": "Lorazepam", "medication_id": lorazepam},
            {
                "change": "changed",
                "name": "Metformin",
                "medication_id": metformin,
                "medication": {"strength": "1000 mg", "instructions": "With dinner."},
            },
        ],
    )
    return discharge, lorazepam, metformin


def _reconcile(api: Api, world: World, discharge_id: int, as_: str = "david", **body: Any) -> Any:
    return api.post(
        f"/patients/{world.chen}/discharges/{discharge_id}/reconciliation", as_=as_, json=body
    )


def _pending(medication_id: int) -> list[Reminder]:
    db.session.expire_all()
    return [
        r
        for r in db.session.scalars(select(Reminder).where(Reminder.state == "pending"))
        if r.subject.get("medication_id") == medication_id
    ]


def _medicines(world: World) -> dict[str, Medication]:
    db.session.expire_all()
    return {
        m.name: m
        for m in db.session.scalars(select(Medication).where(Medication.patient_id == world.chen))
    }


def test_a_dry_run_says_what_each_change_will_do_and_changes_nothing(
    api: Api, world: World
) -> None:
    discharge, lorazepam, _ = _chen_home(api, world)
    reminders_before = len(_pending(lorazepam))
    assert reminders_before > 0  # David gets Lorazepam's "time to give" reminders

    r = _reconcile(api, world, discharge["id"], dry_run=True)

    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["dry_run"] is True
    effects = {c["name"]: (c["outcome"], c["effect"]) for c in body["changes"]}
    assert effects == {
        "Furosemide": ("would_apply", "Adds Furosemide 20 mg."),
        "Lorazepam": (
            "would_apply",
            "Stops Lorazepam 0.5 mg; its pending reminders are cancelled.",
        ),
        "Metformin": (
            "would_apply",
            "Changes Metformin 500 mg: strength 500 mg → 1000 mg; instructions none → With dinner.",
        ),
    }
    meds = _medicines(world)
    assert "Furosemide" not in meds
    assert meds["Lorazepam"].status == "active"
    assert meds["Metformin"].strength == "500 mg"
    assert len(_pending(lorazepam)) == reminders_before
    assert all(c["applied_at"] is None for c in body["changes"])


def test_applying_stops_lorazepams_reminders_and_creates_furosemide_with_its_timing(
    api: Api, world: World, clock: Clock
) -> None:
    discharge, lorazepam, metformin = _chen_home(api, world)
    clock.advance(hours=1)

    r = _reconcile(api, world, discharge["id"])

    assert r.status_code == 200, r.get_json()
    outcomes = {c["name"]: c for c in r.get_json()["changes"]}
    assert {name: c["outcome"] for name, c in outcomes.items()} == {
        "Furosemide": "applied",
        "Lorazepam": "applied",
        "Metformin": "applied",
    }
    assert all(c["applied_by_user_id"] == world.users["david"].id for c in outcomes.values())
    meds = _medicines(world)
    assert meds["Lorazepam"].status == "stopped"
    assert _pending(lorazepam) == []
    furosemide = meds["Furosemide"]
    assert furosemide.timing == FUROSEMIDE_TIMING
    assert furosemide.strength == "20 mg"
    assert outcomes["Furosemide"]["medication_id"] == furosemide.id
    assert _pending(furosemide.id), "the new medicine's reminders are planned"
    assert meds["Metformin"].strength == "1000 mg"
    assert meds["Metformin"].instructions == "With dinner."

    # The discharge shows each change as applied, by whom and when.
    shown = api.get(f"/patients/{world.chen}/discharges/{discharge['id']}", as_="priya")
    for change in shown.get_json()["medication_changes"]:
        assert change["applied_by_user_id"] == world.users["david"].id
        assert change["applied_at"] is not None

    # Again: nothing is applied twice.
    again = _reconcile(api, world, discharge["id"], as_="priya").get_json()
    assert {c["outcome"] for c in again["changes"]} == {"already_applied"}
    assert [m.name for m in _medicines(world).values()].count("Furosemide") == 1
    del metformin


def test_a_new_medicine_without_details_refuses_the_whole_step(api: Api, world: World) -> None:
    lorazepam = _add(api, world, "Lorazepam", "0.5 mg")
    discharge = _discharge(
        api,
        world,
        [
            {"change": "new", "name": "Amoxicillin 500 mg", "details": "Three times a day."},
            {"change": "stopped", "name": "Lorazepam", "medication_id": lorazepam},
        ],
    )
    preview = _reconcile(api, world, discharge["id"], dry_run=True).get_json()
    refused = {c["name"]: c for c in preview["changes"] if c["outcome"] == "refused"}
    assert list(refused) == ["Amoxicillin 500 mg"]
    assert "needs its details" in refused["Amoxicillin 500 mg"]["problem"]

    error = assert_error(_reconcile(api, world, discharge["id"]), 422)
    new_id = discharge["medication_changes"][0]["id"]
    assert str(new_id) in error["errors"]["json"]["changes"]
    assert _medicines(world)["Lorazepam"].status == "active"  # all or nothing

    # Giving the details in the same step applies both.
    r = _reconcile(
        api,
        world,
        discharge["id"],
        changes=[
            {
                "id": new_id,
                "medication": {
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "end_date": "2026-11-30",
                },
            },
            {"id": discharge["medication_changes"][1]["id"]},
        ],
    )
    assert r.status_code == 200, r.get_json()
    meds = _medicines(world)
    assert meds["Amoxicillin 500 mg"].end_date.isoformat() == "2026-11-30"
    assert meds["Lorazepam"].status == "stopped"


def test_bad_input_is_a_422_that_changes_nothing(api: Api, world: World) -> None:
    discharge, lorazepam, _ = _chen_home(api, world)
    path = f"/patients/{world.chen}/discharges/{discharge['id']}/reconciliation"
    for body in (
        {"changes": [{"id": 987654}]},
        {"changes": []},
        {"dry_run": "maybe"},
        {"changes": [{"id": discharge["medication_changes"][0]["id"], "medication": {"x": 1}}]},
        {"changes": [{"id": discharge["medication_changes"][0]["id"], "medication": []}]},
    ):
        assert_error(api.post(path, as_="david", json=body), 422)
    # A stopped medicine proposes nothing.
    r = api.post(
        f"/patients/{world.chen}/discharges",
        as_="priya",
        json={
            "facility": "Riverside General Hospital",
            "discharged_at": START.isoformat(),
            "medication_changes": [
                {
                    "change": "stopped",
                    "name": "Lorazepam",
                    "medication_id": lorazepam,
                    "medication": {"strength": "1 mg"},
                }
            ],
        },
    )
    assert_error(r, 422)
    assert _medicines(world)["Lorazepam"].status == "active"
    assert "Furosemide" not in _medicines(world)


def test_reconciliation_is_done_when_every_change_is_applied_and_acknowledged(
    api: Api, world: World, clock: Clock
) -> None:
    discharge, _, _ = _chen_home(api, world)
    path = f"/patients/{world.chen}/discharges/{discharge['id']}"

    def task() -> dict[str, Any]:
        tasks = api.get(path, as_="priya").get_json()["tasks"]
        (found,) = [t for t in tasks if t["kind"] == "medication_reconciliation"]
        return found

    clock.advance(hours=1)
    for change in discharge["medication_changes"]:
        r = api.post(f"{path}/medication-changes/{change['id']}/acknowledge", as_="david")
        assert r.status_code == 200
    assert task()["status"] == "pending"  # acknowledged at home, the list is not changed yet

    clock.advance(hours=1)
    assert _reconcile(api, world, discharge["id"], as_="priya").status_code == 200
    done = task()
    assert done["status"] == "done"
    assert done["done_by_user_id"] == world.users["priya"].id


def test_outsiders_cannot_see_or_apply_and_nothing_changes(api: Api, world: World) -> None:
    discharge, lorazepam, _ = _chen_home(api, world)
    for who in ("omar", "sam", "ana", "maria"):
        assert_error(_reconcile(api, world, discharge["id"], as_=who), 404)
    assert _medicines(world)["Lorazepam"].status == "active"
    assert _pending(lorazepam)
