"""Who around a patient may be told what: the one answer for reminders, escalation,
summaries, prompts and messages.

A patient's :class:`Circle` is their own login, the caregivers with an active grant (with
the permissions each holds; a managing caregiver holds them all) and the members of the care
teams they are enrolled on, and who gives the doses (:meth:`Circle.givers`: the patient, chosen
caregivers holding log_doses, or both; per patient with per-medicine overrides; by default the
patient's own login or a managed patient's managing caregivers). It is read in four queries
for any number of patients.

Every door asks the circle with the permission its content needs, when a row is planned and
again when the dispatcher sends it (:data:`KIND_PERMISSION`): an appointment reminder needs
view_appointments, a dose reminder log_doses, a missed-dose alert
receive_missed_dose_alerts, and so on. What a push may *say* is asked the same way
(:func:`may_disclose`): a medicine's name needs view_medications, a visit's title
view_appointments -- on top of the recipient's own lock-screen opt-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from backend.clock import now
from backend.db import among
from backend.models.caregiving import ALL_PERMISSIONS, CaregiverGrant, Permission, grant_allows
from backend.models.careteam import Enrollment, care_team_rows
from backend.models.dose_givers import DoseGivers
from backend.models.outbox import Reminder
from backend.models.patient import Patient
from backend.models.user import User
from backend.reminders.escalation import Step


@dataclass
class Circle:
    """Who around a patient may be told: the patient's login, caregivers, the team."""

    patient_user: int | None = None
    caregivers: set[int] = field(default_factory=set)  # any active grant
    alert_holders: set[int] = field(default_factory=set)  # the permission, or managing
    managing: set[int] = field(default_factory=set)
    messengers: set[int] = field(default_factory=set)  # message_care_team, or managing
    care_team: set[int] = field(default_factory=set)
    # caregiver user id -> the permissions their grants give (all of them when managing)
    holdings: dict[int, set[str]] = field(default_factory=dict)

    def holds(self, user_id: int, permission: Permission) -> bool:
        """The patient and the care team see everything reminders carry; a caregiver what
        their grant gives."""
        if user_id == self.patient_user or user_id in self.care_team:
            return True
        return permission.value in self.holdings.get(user_id, set())

    # medicine id (None: the patient's own setting) -> (receives, chosen caregivers)
    dose_givers: dict[int | None, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    def acting(self) -> list[int]:
        """Who acts for the patient day to day: their own login, or -- for a managed patient
        (a child, a parent with dementia) -- the managing caregivers, who answer the
        check-ins, reorder the medicines and, unless others were chosen, give the doses."""
        return [self.patient_user] if self.patient_user is not None else sorted(self.managing)

    def default_receives(self) -> str:
        """Who gives the doses when no one chose (:meth:`acting`), as a setting would say
        it: "patient", or "caregivers" for a managed patient."""
        return "patient" if self.patient_user is not None else "caregivers"

    def givers(self, medication_id: int | None = None) -> list[int]:
        """Who gives this medicine's doses, so gets its on-time reminder and follow-up (a
        "patient" step): the medicine's setting, else the patient's, else :meth:`acting`.
        A chosen caregiver counts while an active grant gives them log_doses; when none of
        the chosen does any more, the default applies again rather than nobody."""
        setting = self.dose_givers.get(medication_id) if medication_id is not None else None
        if setting is None:
            setting = self.dose_givers.get(None)
        if setting is None:
            return self.acting()
        receives, chosen = setting
        own = [self.patient_user] if self.patient_user is not None else []
        if receives == "patient":
            return own or self.acting()
        people = sorted(
            {u for u in chosen if Permission.LOG_DOSES.value in self.holdings.get(u, ())}
        )
        if not people:
            return self.acting()
        return (own if receives == "both" else []) + [u for u in people if u not in own]

    def recipients(self, step: Step, medication_id: int | None = None) -> list[int]:
        if step.notify == "patient":
            return self.givers(medication_id)
        if step.notify == "caregiver":
            return [step.user_id] if step.user_id in self.alert_holders else []
        if step.notify == "caregivers":
            return sorted(self.alert_holders)
        return sorted(self.care_team)

    def may_receive(
        self, user_id: int, kind: str, target: str | None, medication_id: int | None = None
    ) -> bool:
        """Whether ``user_id`` may still get a reminder of ``kind`` about this patient (a
        dose reminder or follow-up about a medicine: only who gives its doses)."""
        if user_id == self.patient_user:
            return True
        if kind in GIVER_KINDS and medication_id is not None:
            return user_id in self.givers(medication_id)
        if kind == "missed_dose_alert":
            pool = self.care_team if target == "care_team" else self.alert_holders
            return user_id in pool
        if kind == "urgent_flag":
            return user_id in self.care_team
        needed = KIND_PERMISSION.get(kind)
        if needed is None:
            return user_id in self.caregivers or user_id in self.care_team
        return self.holds(user_id, needed)


# What a caregiver must hold to be told of each kind (the patient and the care team may be).
KIND_PERMISSION: Mapping[str, Permission] = {
    "dose": Permission.LOG_DOSES,
    "dose_followup": Permission.LOG_DOSES,
    "refill": Permission.VIEW_MEDICATIONS,
    "appointment": Permission.VIEW_APPOINTMENTS,
    "checkin_prompt": Permission.VIEW_CHECKINS,
    "device_health": Permission.RECEIVE_MISSED_DOSE_ALERTS,
    "alert_taken": Permission.RECEIVE_MISSED_DOSE_ALERTS,  # "Ana is on it", over the alert
    "prn_over_limit": Permission.RECEIVE_MISSED_DOSE_ALERTS,  # see backend.reminders.prn
    "message": Permission.MESSAGE_CARE_TEAM,
}
# The kinds that go to who gives the doses (Circle.givers) rather than to every permission holder.
GIVER_KINDS = frozenset({"dose", "dose_followup"})
# What a push may name, by the detail: needs this permission besides the lock-screen opt-in.
DETAIL_PERMISSION: Mapping[str, Permission] = {
    "medication": Permission.VIEW_MEDICATIONS,
    "appointment": Permission.VIEW_APPOINTMENTS,
}


def circles(db: Session, patients: Iterable[Patient], at: datetime) -> dict[int, Circle]:
    """The circle of each patient, in four queries whatever the number of patients."""
    by_id = {p.id: Circle(patient_user=p.user_id) for p in patients}
    if not by_id:
        return by_id
    grants = db.execute(
        select(
            CaregiverGrant.patient_id,
            CaregiverGrant.caregiver_user_id,
            CaregiverGrant.is_managing,
            CaregiverGrant.permissions,
        ).where(among(db, CaregiverGrant.patient_id, list(by_id)), CaregiverGrant.active_clause(at))
    )
    for patient_id, user_id, managing, permissions in grants:
        circle = by_id[patient_id]
        circle.caregivers.add(user_id)
        held = circle.holdings.setdefault(user_id, set())
        held |= set(ALL_PERMISSIONS) if managing else set(permissions or [])
        if managing:
            circle.managing.add(user_id)
        if grant_allows(managing, permissions, Permission.RECEIVE_MISSED_DOSE_ALERTS):
            circle.alert_holders.add(user_id)
        if grant_allows(managing, permissions, Permission.MESSAGE_CARE_TEAM):
            circle.messengers.add(user_id)
    for patient_id, members in care_team_user_ids(db, by_id).items():
        by_id[patient_id].care_team |= members
    settings = db.execute(
        select(
            DoseGivers.patient_id,
            DoseGivers.medication_id,
            DoseGivers.receives,
            DoseGivers.caregiver_user_ids,
        ).where(among(db, DoseGivers.patient_id, list(by_id)))
    )
    for patient_id, medication_id, receives, chosen in settings:
        by_id[patient_id].dose_givers[medication_id] = (receives, tuple(chosen or ()))
    return by_id


def care_team_user_ids(db: Session, patient_ids: Iterable[int]) -> dict[int, set[int]]:
    """patient id -> the active members of the care teams the patient is enrolled on."""
    rows = db.execute(care_team_rows().where(among(db, Enrollment.patient_id, list(patient_ids))))
    found: dict[int, set[int]] = {}
    for patient_id, user_id, _role in rows:
        found.setdefault(patient_id, set()).add(user_id)
    return found


_CACHE = "backend.reminders.audience"


def may_disclose(reminder: Reminder, user: User, detail: str) -> bool:
    """Whether a push may name ``detail`` ("medication", "appointment") of the patient the
    reminder is about to its recipient: the permission that content needs, read now. The
    circles are read once for every reminder the dispatcher's session holds (the batch)."""
    permission = DETAIL_PERMISSION.get(detail)
    if reminder.patient_id is None or permission is None:
        return reminder.patient_id is None
    db = object_session(reminder)
    if db is None:
        return False
    cache: dict[int, Circle] = db.info.setdefault(_CACHE, {})
    if reminder.patient_id not in cache:
        wanted = {reminder.patient_id} | {
            r.patient_id
            for r in db.identity_map.values()
            if isinstance(r, Reminder) and r.patient_id is not None
        }
        patients = list(db.scalars(select(Patient).where(Patient.id.in_(wanted - set(cache)))))
        cache.update(circles(db, patients, now()))
    circle = cache.get(reminder.patient_id)
    return circle is not None and circle.holds(user.id, permission)
