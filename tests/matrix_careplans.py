"""Care-plan routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from backend import db
from backend.api.careplans import plan_etag
from backend.models import CarePlan
from backend.services.careplans import start_plan
from tests.conftest import World
from tests.matrix import Entry

PLANS = "/patients/<int:patient_id>/care-plans"
PLAN = "/patients/<int:patient_id>/care-plans/<int:plan_id>"


def _if_match(patient: str, ids: dict[str, int]) -> dict[str, str]:
    plan = db.session.get(CarePlan, ids[f"plan_id:{patient}"])
    assert plan is not None
    return {"If-Match": f'"{plan_etag(plan)}"'}


ENTRIES = {
    (PLANS, "GET"): Entry("view_care_plan", (200,)),
    (PLANS, "POST"): Entry("edit_care_plan", (201,), body=lambda p: {"title": "Winter plan"}),
    ("/patients/<int:patient_id>/care-plan", "GET"): Entry("view_care_plan", (200,)),
    (PLAN, "GET"): Entry("view_care_plan", (200,)),
    (PLAN, "PATCH"): Entry(
        "edit_care_plan",
        (200,),
        body=lambda p: {"instructions": "Walk after lunch."},
        headers=_if_match,
    ),
    (PLAN + "/revisions", "GET"): Entry("view_care_plan", (200,)),
}


def prepare(world: World) -> dict[str, int]:
    ids = {}
    for key, patient_id in (("maria", world.maria), ("chen", world.chen)):
        plan = start_plan(
            db.session(), patient_id, {"title": f"{key}'s plan"}, world.users["priya"].id
        )
        ids[f"plan_id:{key}"] = plan.id
    return ids
