"""Matrix entries for the FHIR export and import (see test_access_matrix)."""

from __future__ import annotations

from tests.matrix import Entry

ENTRIES = {
    # Anyone who sees the patient gets a bundle, holding what their permissions allow.
    ("/fhir/Patient/<int:patient_id>/$everything", "GET"): Entry("view_patient", (200,)),
}
