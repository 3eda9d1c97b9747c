"""The permission model as the matrix test states it, and the Entry type feature modules use.

Feature modules put their routes in ``tests/matrix_<feature>.py`` (see test_access_matrix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLINICAL = {
    "edit_care_plan",
    "view_care_plan",
    "view_medications",
    "log_doses",
    "manage_medications",
    "view_appointments",
    "manage_appointments",
    "view_checkins",
    "message_care_team",
    "manage_checkins",
    "manage_transitions",
}
BASIC = {"view_patient", "view_care_team"}
EVERYTHING = (
    BASIC
    | CLINICAL
    | {"edit_patient", "manage_access", "view_access_log", "receive_missed_dose_alerts"}
)
ANA_GRANTED = {
    "view_care_plan",
    "view_medications",
    "log_doses",
    "view_appointments",
    "manage_appointments",
    "receive_missed_dose_alerts",
    "message_care_team",
}
# persona -> patient -> what that persona may do there (absent: no relation -> 404)
ALLOWED: dict[str, dict[str, set[str]]] = {
    "maria": {"maria": EVERYTHING - {"manage_checkins"}},
    "ana": {"maria": BASIC | ANA_GRANTED},
    "david": {"chen": EVERYTHING - {"manage_checkins"}},
    "priya": {"maria": BASIC | CLINICAL, "chen": BASIC | CLINICAL},
    "omar": {},
    "sam": {},
    "rita": {},  # her access to Maria was revoked a moment ago
    "lena": {},  # her two-week grant on Maria lapsed by itself
}


@dataclass(frozen=True)
class Entry:
    action: str
    ok: tuple[int, ...]
    body: Callable[[str], Any] | None = None
    # extra rule for who may act beyond the action (leaving one's own grant)
    also: Callable[[str, str], bool] | None = None
    expect_for: Callable[[str], tuple[int, ...]] | None = None
    # request headers from (patient, ids), e.g. If-Match with the record's current ETag;
    # ``patient`` is the one whose ids the path uses (maria for "nobody")
    headers: Callable[[str, dict[str, int]], dict[str, str]] | None = None
    # what someone who may see the patient but not do this gets: 403, or 404 where even
    # "it exists" is not theirs to learn (another person's grant id)
    refused: int = 403
    # whether that refusal is in the patient's access log (the audit column): not where the
    # route asks about something else first and never reaches the patient (a team one is not on)
    refusal_logged: bool = True
