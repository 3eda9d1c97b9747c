"""Care-transition routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from backend import db
from backend.clock import now
from backend.models import MedicationChange, Patient
from backend.services.transitions import record_discharge
from tests.conftest import World
from tests.matrix import Entry

DISCHARGES = "/patients/<int:patient_id>/discharges"
ONE = f"{DISCHARGES}/<int:discharge_id>"
ACK = f"{ONE}/medication-changes/<int:change_id>/acknowledge"
RECONCILE = f"{ONE}/reconciliation"
ENCOUNTERS = "/patients/<int:patient_id>/encounters"
# Medication changes are acknowledged at home: the patient, the managing caregiver, or a
# caregiver granted manage_medications (none here). The care team records them, and gets 403.
_HOME = {("maria", "maria"), ("david", "chen")}


def _discharge(p: str) -> dict[str, object]:
    return {
        "facility": "Riverside General Hospital",
        "discharged_at": (now() - timedelta(hours=2)).isoformat(),
        "medication_changes": [{"change": "new", "name": "Amoxicillin 500 mg"}],
    }


ENTRIES = {
    (DISCHARGES, "GET"): Entry("view_care_plan", (200,)),
    (DISCHARGES, "POST"): Entry("manage_transitions", (201,), body=_discharge),
    (ONE, "GET"): Entry("view_care_plan", (200,)),
    (ACK, "POST"): Entry(
        "acknowledge_medication_change", (200,), also=lambda who, p: (who, p) in _HOME
    ),
    # A dry run: says what each change would do, changes nothing (the same door as applying).
    (RECONCILE, "POST"): Entry("manage_medications", (200,), body=lambda p: {"dry_run": True}),
    (ENCOUNTERS, "GET"): Entry("view_care_plan", (200,)),
    (ENCOUNTERS, "POST"): Entry(
        "manage_transitions",
        (201,),
        body=lambda p: {
            "kind": "er_visit",
            "facility": "Riverside General ER",
            "start": (now() - timedelta(hours=1)).isoformat(),
        },
    ),
}


def prepare(world: World) -> dict[str, int]:
    ids: dict[str, int] = {}
    priya = world.users["priya"]
    for key, pid in (("maria", world.maria), ("chen", world.chen)):
        patient = db.session.get(Patient, pid)
        assert patient is not None
        data = {
            "facility": "Riverside General Hospital",
            "discharged_at": now() - timedelta(days=1),
            "medication_changes": [{"change": "new", "name": "Amoxicillin 500 mg"}],
        }
        discharge = record_discharge(db.session(), patient, priya, "care_team", data)
        ids[f"discharge_id:{key}"] = discharge.id
        ids[f"change_id:{key}"] = discharge_change_id(discharge.id)
    return ids


def discharge_change_id(discharge_id: int) -> int:
    found = db.session.scalar(
        select(MedicationChange.id).where(MedicationChange.discharge_id == discharge_id)
    )
    assert found is not None
    return found
