"""Matrix entries for adherence (see test_access_matrix); the team panel is in test_adherence."""

from __future__ import annotations

from tests.matrix import Entry

ENTRIES = {
    ("/patients/<int:patient_id>/adherence", "GET"): Entry("view_medications", (200,)),
    ("/patients/<int:patient_id>/adherence/weekly", "GET"): Entry("view_medications", (200,)),
}
