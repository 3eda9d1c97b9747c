"""Matrix entries for the FHIR export and import (see test_access_matrix)."""

from __future__ import annotations

from tests.matrix import ALLOWED, Entry

# Importing needs one of these; a resource of a kind the caller may not manage is refused in
# the report (a medicine, for someone who manages only appointments: still a 200).
IMPORTS = {"manage_medications", "manage_appointments", "edit_care_plan"}

ONE_MEDICINE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:6a0c3c1e-2b7f-4b8e-9f51-3d2f8a7c1e90",
            "resource": {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Metformin 500 mg"},
                "subject": {"reference": "Patient/source-1"},
                "dosageInstruction": [{"timing": {"code": {"text": "BID"}}}],
            },
        }
    ],
}

ENTRIES = {
    # Anyone who sees the patient gets a bundle, holding what their permissions allow.
    ("/fhir/Patient/<int:patient_id>/$everything", "GET"): Entry("view_patient", (200,)),
    ("/patients/<int:patient_id>/fhir-import", "POST"): Entry(
        "manage_medications",
        (200,),
        body=lambda p: ONE_MEDICINE,
        also=lambda who, p: bool(ALLOWED[who].get(p, set()) & IMPORTS),
    ),
}
