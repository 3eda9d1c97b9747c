"""Appointment routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from datetime import timedelta

from backend import db
from backend.models import Appointment
from tests.conftest import START, World
from tests.matrix import Entry

BASE = "/patients/<int:patient_id>/appointments"
ONE = f"{BASE}/<int:appointment_id>"
# A week after the tests' clock: every body below is in the future for it.
DAY = START + timedelta(days=7)


def _at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).isoformat()


ENTRIES = {
    (BASE, "GET"): Entry("view_appointments", (200,)),
    (BASE, "POST"): Entry(
        "manage_appointments",
        (201,),
        body=lambda p: {
            "title": "Blood draw",
            "type": "lab",
            "location": "Riverside Lab, 2nd floor",
            "start": _at(0),
            "end": _at(0.5),
        },
    ),
    (ONE, "GET"): Entry("view_appointments", (200,)),
    (ONE, "PATCH"): Entry(
        "manage_appointments", (200,), body=lambda p: {"preparation_notes": "Bring the log."}
    ),
    (f"{ONE}/reschedule", "POST"): Entry(
        "manage_appointments", (200,), body=lambda p: {"start": _at(24), "end": _at(25)}
    ),
    (f"{ONE}/cancel", "POST"): Entry(
        "manage_appointments", (200,), body=lambda p: {"reason": "Feeling better."}
    ),
    (f"{ONE}/history", "GET"): Entry("view_appointments", (200,)),
}


def prepare(world: World) -> dict[str, int]:
    """One booked appointment a week ahead for each patient."""
    ids = {}
    for key, patient_id, by in (("maria", world.maria, "maria"), ("chen", world.chen, "david")):
        user_id = world.users[by].id
        appointment = Appointment(
            patient_id=patient_id,
            title="Check-up",
            type="in_person",
            location="Riverside Clinic",
            start_at=DAY,
            end_at=DAY + timedelta(minutes=30),
            time_zone=world.patients[key].time_zone,
            created_by_user_id=user_id,
            updated_by_user_id=user_id,
        )
        db.session.add(appointment)
        db.session.flush()
        ids[f"appointment_id:{key}"] = appointment.id
    return ids
