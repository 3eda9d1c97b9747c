"""Escalation-chain routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from tests.matrix import Entry

BASE = "/patients/<int:patient_id>/escalation"

ENTRIES = {
    (BASE, "GET"): Entry("view_patient", (200,)),
    (BASE, "PUT"): Entry(
        "manage_access",
        (200,),
        body=lambda p: {
            "steps": [
                {"after_minutes": 20, "notify": "patient"},
                {"after_minutes": 45, "notify": "care_team"},
            ]
        },
    ),
}
