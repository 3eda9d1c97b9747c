"""One check-in response (JSON and FHIR) and a patient's flag rules in the route x persona
matrix (see tests/test_access_matrix.py). ``/checkin-templates`` is not under a patient: who
sees which template is in tests/test_checkin_templates.py."""

from __future__ import annotations

from backend import db
from backend.clock import now
from backend.models import CheckinResponse
from backend.models.checkin import PatientFlagRule
from tests.conftest import World
from tests.matrix import Entry

RESPONSE = "/patients/<int:patient_id>/checkin-responses/<int:response_id>"
RULES = "/patients/<int:patient_id>/flag-rules"
RULE = "/patients/<int:patient_id>/flag-rules/<int:rule_id>"

# manage_checkins is the care team's alone (tests/matrix.py): the patient's side may read
# the rules but not switch off what the nurse set.
ENTRIES = {
    (RESPONSE, "GET"): Entry("view_checkins", (200,)),
    (RESPONSE + "/fhir", "GET"): Entry("view_checkins", (200,)),
    (RULES, "GET"): Entry("view_checkins", (200,)),
    (RULES, "POST"): Entry(
        "manage_checkins",
        (201,),
        body=lambda p: {
            "template": "PHQ-9",
            "rule": {"name": "phq9_mild", "kind": "band_at_least", "band": "mild"},
        },
    ),
    (RULE, "DELETE"): Entry("manage_checkins", (204,)),
}


def prepare(world: World) -> dict[str, int]:
    ids = {}
    priya = world.users["priya"].id
    for key, patient_id in (("maria", world.maria), ("chen", world.chen)):
        response = CheckinResponse(
            patient_id=patient_id,
            template_code="PHQ-2",
            answers={"44250-9": "LA6568-5", "44255-8": "LA6569-3"},
            score=1,
            band="negative",
            flags=[],
            raised=[],
            answered_by_user_id=priya,
            on_behalf=True,
            answered_as="care_team",
            at=now(),
        )
        rule = PatientFlagRule(
            patient_id=patient_id,
            template_code="GAD-7",
            name="gad7_mild",
            rule={"name": "gad7_mild", "kind": "band_at_least", "band": "mild"},
            created_by_user_id=priya,
            created_at=now(),
            active=True,
        )
        db.session.add_all([response, rule])
        db.session.flush()
        ids[f"response_id:{key}"] = response.id
        ids[f"rule_id:{key}"] = rule.id
    return ids
