"""Check-in schedule routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from datetime import timedelta

from backend import db
from backend.clock import now
from backend.services.checkin_schedules import schedule_checkin
from tests.conftest import World
from tests.matrix import Entry

SCHEDULES = "/patients/<int:patient_id>/checkin-schedules"
ONE = f"{SCHEDULES}/<int:schedule_id>"
# Mr. Chen has no login: his prompts go to David, so a template a caregiver may answer.
TEMPLATE = {"chen": "POST-DISCHARGE"}
DAILY = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["10:00"]}}

ENTRIES = {
    (SCHEDULES, "GET"): Entry("view_checkins", (200,)),
    (SCHEDULES, "POST"): Entry(
        "manage_checkins",
        (201,),
        body=lambda p: {
            "template": TEMPLATE.get(p, "PHQ-2"),
            "timing": DAILY,
            "answer_within": "PT12H",
        },
    ),
    (ONE, "GET"): Entry("view_checkins", (200,)),
    (f"{ONE}/cancel", "POST"): Entry("manage_checkins", (200,)),
    (f"{ONE}/occurrences", "GET"): Entry("view_checkins", (200,)),
}


def prepare(world: World) -> dict[str, int]:
    ids: dict[str, int] = {}
    for key, pid in (("maria", world.maria), ("chen", world.chen)):
        schedule = schedule_checkin(
            db.session(),
            patient_id=pid,
            template_code=TEMPLATE.get(key, "PHQ-2"),
            timing=DAILY,
            answer_within=timedelta(hours=24),
            expires_at=now() + timedelta(days=30),
            created_by_user_id=world.users["priya"].id,
        )
        ids[f"schedule_id:{key}"] = schedule.id
    return ids
