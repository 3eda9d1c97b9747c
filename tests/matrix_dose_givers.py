"""Who-gives-the-dose routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from tests.matrix import Entry

BASE = "/patients/<int:patient_id>/dose-givers"

ENTRIES = {
    (BASE, "GET"): Entry("view_patient", (200,)),
    # Back to the default: valid for a patient with a login and for a managed one alike.
    (BASE, "PUT"): Entry("manage_access", (200,), body=lambda p: {"receives": None}),
}
