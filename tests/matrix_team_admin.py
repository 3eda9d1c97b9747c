"""Team-admin routes with a patient in the path, in the route x persona matrix."""

from __future__ import annotations

from tests.conftest import World
from tests.matrix import Entry

ENDED = "/care-teams/<int:team_id>/enrollments/<int:patient_id>"

# Only the team's admin (Priya, on the team both patients are enrolled on) ends an
# enrolment; everyone else learns nothing, not even that the patient is on the team.
ENTRIES = {
    (ENDED, "DELETE"): Entry(
        "end_enrollment",
        (204,),
        also=lambda who, p: who == "priya",
        refused=404,
        refusal_logged=False,  # the team is asked first: no use of the patient's record
    ),
}


def prepare(world: World) -> dict[str, int]:
    team = world.teams["Riverside Primary Care A"].id
    return {"team_id:maria": team, "team_id:chen": team}
