"""Check-in routes in the route x persona matrix (see tests/test_access_matrix.py)."""

from __future__ import annotations

from tests.matrix import Entry

RESPONSES = "/patients/<int:patient_id>/checkin-responses"
# Only the patient and the care team (an answer given by phone) may answer a standard
# screener: no caregiver may, not even a managing one. "answer_screener" is in nobody's set;
# ``also`` says who may.
_CARE_TEAM = {"priya"}

ENTRIES = {
    (RESPONSES, "GET"): Entry("view_checkins", (200,)),
    (RESPONSES, "POST"): Entry(
        "answer_screener",
        (201,),
        body=lambda p: {"template": "PHQ-2", "answers": {"44250-9": 0, "44255-8": 1}},
        also=lambda who, p: who == p or who in _CARE_TEAM,
    ),
}
