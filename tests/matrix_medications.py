"""Matrix entries for medicines, doses and their schedule (see test_access_matrix)."""

from __future__ import annotations

from datetime import date

from backend import db
from backend.clock import now
from backend.models import DoseLog, Medication
from tests.conftest import World
from tests.matrix import Entry

DAILY_8 = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00"]}}

ENTRIES = {
    ("/patients/<int:patient_id>/medications", "GET"): Entry("view_medications", (200,)),
    ("/patients/<int:patient_id>/medications", "POST"): Entry(
        "manage_medications", (201,), body=lambda p: {"name": "Metformin", "timing": DAILY_8}
    ),
    ("/patients/<int:patient_id>/medications/<int:medication_id>", "GET"): Entry(
        "view_medications", (200,)
    ),
    ("/patients/<int:patient_id>/medications/<int:medication_id>", "PATCH"): Entry(
        "manage_medications", (200,), body=lambda p: {"quantity_on_hand": 30}
    ),
    ("/patients/<int:patient_id>/medications/<int:medication_id>/schedule", "GET"): Entry(
        "view_medications", (200,)
    ),
    ("/patients/<int:patient_id>/doses", "GET"): Entry("view_medications", (200,)),
    ("/patients/<int:patient_id>/doses", "POST"): Entry(
        "log_doses",
        (201,),
        body=lambda p: {
            "medication_id": _ids[f"medication_id:{p if p != 'nobody' else 'maria'}"],
            "client_id": "matrix-log-0001",
            "status": "taken",
            "taken_at": now().isoformat(),
        },
    ),
    ("/patients/<int:patient_id>/doses/<int:dose_id>", "PATCH"): Entry(
        "log_doses", (200,), body=lambda p: {"status": "skipped", "skip_reason": "Felt sick"}
    ),
    ("/patients/<int:patient_id>/doses/<int:dose_id>", "DELETE"): Entry("log_doses", (204, 409)),
}

_ids: dict[str, int] = {}


def prepare(world: World) -> dict[str, int]:
    for key, pid in (("maria", world.maria), ("chen", world.chen)):
        med = Medication(
            patient_id=pid,
            name="Lisinopril",
            strength="10 mg",
            start_date=date(2026, 11, 1),
            timing=DAILY_8,
            home_time_zone="America/New_York",
            created_by_user_id=world.users["maria"].id,
        )
        db.session.add(med)
        db.session.flush()
        log = DoseLog(
            patient_id=pid,
            medication_id=med.id,
            client_id=f"matrix-{key}-seed",
            status="taken",
            taken_at=now(),
            logged_by_user_id=world.users["maria"].id,
            logged_at=now(),
            corrections=[],
        )
        db.session.add(log)
        db.session.flush()
        _ids[f"medication_id:{key}"] = med.id
        _ids[f"dose_id:{key}"] = log.id
    return dict(_ids)
