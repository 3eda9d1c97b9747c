"""Who gives the doses: a patient's setting (or one medicine's override) of who receives the
on-time dose reminder and its follow-up, checked and stored, with the patient's reminders
planned again to follow it in the caller's transaction.

The rule that applies it is ``backend.reminders.audience.Circle.givers``; a chosen caregiver
must hold log_doses on an active grant when chosen, and one who stops holding it (a grant
changed, revoked or lapsed) is skipped from then on by the planner and the dispatcher.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import fail
from backend.models import CaregiverGrant, Patient, Permission, User
from backend.models.dose_givers import DoseGivers
from backend.reminders.audience import Circle, circles
from backend.reminders.planner import replan_for_patient
from backend.services.patient_settings import save_setting, stored_setting

MAX_GIVERS = 20


def _refuse(message: str) -> None:
    fail(422, message, errors={"json": {"caregiver_user_ids": [message]}})


def _check_choice(
    session: Session, patient: Patient, circle: Circle, receives: str, chosen: list[int]
) -> None:
    if receives in ("patient", "both") and patient.is_managed:
        fail(
            422,
            f"{patient.display_name} has no login of their own: choose the caregivers who "
            "give the doses.",
            errors={"json": {"receives": ["The patient has no login of their own."]}},
        )
    if receives == "patient" and chosen:
        _refuse("Choose caregivers only when they receive the reminders ('caregivers', 'both').")
    if receives != "patient" and not chosen:
        _refuse("Choose at least one caregiver who gives the doses.")
    if patient.user_id is not None and patient.user_id in chosen:
        _refuse("The patient is not their own caregiver: choose 'both' instead.")
    known = {
        u.id: u.name
        for u in session.scalars(
            select(User)
            .join(CaregiverGrant, CaregiverGrant.caregiver_user_id == User.id)
            .where(CaregiverGrant.patient_id == patient.id, User.id.in_(chosen))
        )
    }
    for user_id in chosen:
        if user_id not in known:  # never tell whose id it is: they are not in the circle
            _refuse(f"User {user_id} is not a caregiver of this patient.")
        name = known[user_id]
        if user_id not in circle.caregivers:
            _refuse(f"{name} no longer has access to this patient.")
        if Permission.LOG_DOSES.value not in circle.holdings.get(user_id, set()):
            _refuse(f"{name} may not log doses for this patient (log_doses).")


def set_dose_givers(
    session: Session,
    patient: Patient,
    by: User,
    medication_id: int | None,
    receives: str | None,
    caregiver_user_ids: list[int],
) -> None:
    """Set the patient's setting (``medication_id`` None) or that medicine's override;
    ``receives`` None goes back to the default (the override: to the patient's setting)."""
    row = stored_setting(session, DoseGivers, patient, medication_id)
    chosen = list(dict.fromkeys(caregiver_user_ids))
    if len(chosen) > MAX_GIVERS:
        _refuse(f"At most {MAX_GIVERS} caregivers.")
    if receives is None:
        if chosen:
            _refuse("Going back to the default takes no caregivers.")
        if row is not None:
            session.delete(row)
    else:
        circle = circles(session, [patient], now())[patient.id]
        _check_choice(session, patient, circle, receives, chosen)
        row = row or DoseGivers(patient_id=patient.id, medication_id=medication_id)
        row.receives = receives
        row.caregiver_user_ids = chosen
        save_setting(session, row, by)
    session.flush()
    replan_for_patient(session, patient.id)


def names_a_giver(session: Session, patient_id: int, user_id: int) -> bool:
    """Whether any setting of the patient chose this caregiver."""
    return any(
        user_id in (ids or [])
        for ids in session.scalars(
            select(DoseGivers.caregiver_user_ids).where(DoseGivers.patient_id == patient_id)
        )
    )


def dose_givers_view(session: Session, patient: Patient) -> dict[str, Any]:
    """The patient's setting and each override, with who they reach now (by name)."""
    circle = circles(session, [patient], now())[patient.id]
    rows = list(
        session.scalars(
            select(DoseGivers).where(DoseGivers.patient_id == patient.id).order_by(DoseGivers.id)
        )
    )
    own = next((r for r in rows if r.medication_id is None), None)
    people = {u for r in rows for u in r.caregiver_user_ids or []}
    people |= set(circle.givers(None)) | {
        u for r in rows if r.medication_id is not None for u in circle.givers(r.medication_id)
    }
    names = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(people)))}

    def reaches(medication_id: int | None) -> list[dict[str, Any]]:
        return [
            {"user_id": u, "name": names.get(u) or "", "is_patient": u == patient.user_id}
            for u in circle.givers(medication_id)
        ]

    return {
        "receives": own.receives if own else circle.default_receives(),
        "caregiver_user_ids": list(own.caregiver_user_ids or []) if own else [],
        "is_default": own is None,
        "reaches": reaches(None),
        "overrides": [
            {
                "medication_id": r.medication_id,
                "receives": r.receives,
                "caregiver_user_ids": list(r.caregiver_user_ids or []),
                "reaches": reaches(r.medication_id),
            }
            for r in rows
            if r.medication_id is not None
        ],
    }


def given_by(session: Session, patient: Patient, medication_ids: list[int]) -> dict[int, Any]:
    """Who gives each of these medicines' doses (the medicine's field ``given_by``): its
    setting (an override, or the patient's, or the default) and who it reaches now."""
    circle = circles(session, [patient], now())[patient.id]
    patient_setting = circle.dose_givers.get(None)
    default = (circle.default_receives(), ())
    found: dict[int, Any] = {}
    for med_id in medication_ids:
        override = circle.dose_givers.get(med_id)
        receives, _ = override or patient_setting or default
        found[med_id] = {
            "receives": receives,
            "is_override": override is not None,
            "user_ids": circle.givers(med_id),
        }
    return found
