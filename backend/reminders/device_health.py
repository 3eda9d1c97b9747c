"""Device health: noticing when a person's reminders cannot reach them, and saying so once.

A reminder app's worst failure is the silent one. For every person who should receive
reminders -- patients with their own login, caregivers holding receive_missed_dose_alerts,
the managing caregivers of managed patients and the caregivers who give a patient's doses --
:func:`reach_of` classifies their devices:

- ``no_device``: no active device and none was ever rejected (never signed in, or signed out);
- ``tokens_rejected``: no active device, and FCM rejected the tokens (the dispatcher
  deactivated them with FCM's error code as ``deactivated_reason``);
- ``notifications_off``: active devices, every one of them reports notifications turned off;
- ``not_seen``: devices that could receive, none seen (app opened) for 7 days.

The person sees the problem in their today view (``reminders_reach_you``). When a *patient's*
reminders cannot reach them, every caregiver holding receive_missed_dose_alerts gets ONE
``device_health`` reminder per problem episode ("María's phone is not receiving
reminders"), not one per check. The episode is remembered in the outbox itself: its rows
carry ``subject.episode`` (when the problem was first seen) in their dedupe key, so later
checks of the same episode enqueue nothing; a check that finds the patient reachable again
stamps ``subject.resolved_at`` on the episode's rows and cancels any still pending, so the
next problem is a new episode and alerts again.

The phones of the caregivers who give a patient's doses (``Circle.givers`` of an active
scheduled medicine: "Time for Wei's medicine" goes to them) count the same way: when one
cannot be reached, the patient (with a login) and the *other* caregivers holding
receive_missed_dose_alerts get one alert per episode ("Wei's medicine reminders are not
reaching a caregiver who gives them"), or the care team when there is nobody else. Those
rows carry ``subject.giver_user_id`` and their own episode; one who stops giving the doses
closes it. (If old rows are pruned while the phone is still unreachable, the caregivers are
reminded once more: acceptable, arguably useful.)

The alert is not urgent: like the planner's other non-urgent kinds it waits for the end of
the *recipient's* quiet hours (:func:`backend.reminders.quiet_hours.apply_quiet_hours`, in their own
zone) and is dropped if that is past its ``not_after``. A held row is pending, so it keeps
its episode open: the checks during the night build the same dedupe key and enqueue nothing.
A problem resolved during the night cancels it (the next check), and the dispatcher checks
again when it sends it (:func:`still_unreachable`): no alert about a phone that works again.
A change of the recipient's quiet hours moves their pending alerts (:func:`replan_alerts`,
from :func:`backend.reminders.planner.replan_for_user`).

:func:`check_device_health` is the worker's periodic job (every 15 minutes); it runs in the
caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from backend.clock import now as clock_now
from backend.models import CaregiverGrant, Medication, Patient, Permission
from backend.models.device import REACH_PROBLEMS, Device
from backend.models.dose_givers import DoseGivers
from backend.models.outbox import Reminder
from backend.reminders.audience import care_team_user_ids, circles
from backend.reminders.quiet_hours import apply_quiet_hours
from notifications.outbox import cancel, enqueue, reschedule, restamp

NOT_SEEN_AFTER = timedelta(days=7)
# A device-health alert is not urgent, but stale after a day (the next check re-evaluates).
ALERT_LATENESS = timedelta(hours=24)
PROBLEMS = REACH_PROBLEMS
KIND = "device_health"
RESTORED = "device health restored"


@dataclass(frozen=True)
class Reach:
    ok: bool
    problem: str | None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problem": self.problem}


OK = Reach(True, None)


def _devices_query() -> Any:
    return select(Device.user_id, *_reach_columns()).group_by(Device.user_id)


def _reach_columns() -> tuple[Any, ...]:
    reachable = Device.active.is_(True) & Device.notifications_enabled.is_(True)
    return (
        func.count(Device.id).filter(Device.active.is_(True)),
        func.count(Device.id).filter(
            Device.active.is_(False), Device.deactivated_reason.is_not(None)
        ),
        func.count(Device.id).filter(reachable),
        func.max(Device.last_seen_at).filter(reachable),
    )


def reach_subquery() -> Any:
    """The devices of the user of bind ``user_id`` summed up in exactly one row (counts 0
    when there is none), for :func:`classify`: a subquery, so the today view reads it in its
    one statement."""
    return select(*_reach_columns()).where(Device.user_id == bindparam("user_id")).subquery()


# Built once: the today view asks on every request, and building the statement cost more
# than running it.
_ONE_USERS_DEVICES = _devices_query().where(Device.user_id == bindparam("user_id"))


def classify(counts: Any, now: datetime) -> Reach:
    """Reach from a person's device counts (active, rejected, reachable, last seen), or None
    for no device at all."""
    if counts is None:
        return Reach(False, "no_device")
    active, rejected, reachable, last_seen = counts
    if reachable:
        if last_seen is not None and last_seen < now - NOT_SEEN_AFTER:
            return Reach(False, "not_seen")
        return OK
    if active:
        return Reach(False, "notifications_off")
    if rejected:
        return Reach(False, "tokens_rejected")
    return Reach(False, "no_device")


def reach_of(db: Session, user_id: int, now: datetime) -> Reach:
    """Can pushes reach this person? One query (the today view)."""
    row = db.execute(_ONE_USERS_DEVICES, {"user_id": user_id}).first()
    return classify(_counts(row), now)


def reach_of_all(db: Session, user_ids: set[int], now: datetime) -> dict[int, Reach]:
    """The same for many people, in one query over the devices table."""
    rows = {row[0]: row for row in db.execute(_devices_query()) if row[0] in user_ids}
    return {uid: classify(_counts(rows.get(uid)), now) for uid in user_ids}


def _counts(row: Any) -> Any:
    return None if row is None else row[1:]


def _episode_stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def check_device_health(db: Session, now: datetime) -> dict[str, int]:
    """Classify everyone who should receive reminders; alert caregivers once per episode.

    Returns counts: ``checked`` people, ``unreachable`` among them, ``alerts`` enqueued,
    ``resolved`` episodes closed.
    """
    counts = {"checked": 0, "unreachable": 0, "alerts": 0, "resolved": 0}
    own: dict[int, int] = {
        pid: uid
        for pid, uid in db.execute(
            select(Patient.id, Patient.user_id).where(Patient.user_id.is_not(None))
        )
        if uid is not None
    }
    alerted: dict[int, set[int]] = defaultdict(set)
    people: set[int] = set(own.values())
    grants = db.execute(
        select(
            CaregiverGrant.patient_id,
            CaregiverGrant.caregiver_user_id,
            CaregiverGrant.permissions,
            CaregiverGrant.is_managing,
        ).where(CaregiverGrant.active_clause(now))
    )
    for patient_id, caregiver_id, permissions, managing in grants:
        if Permission.RECEIVE_MISSED_DOSE_ALERTS.value in (permissions or []):
            alerted[patient_id].add(caregiver_id)
            people.add(caregiver_id)
        elif managing and patient_id not in own:
            people.add(caregiver_id)  # a managed patient's reminders go to them
    givers = _caregivers_who_give(db, now)
    people |= {u for users in givers.values() for u in users}
    reach = reach_of_all(db, people, now)
    counts["checked"] = len(reach)
    counts["unreachable"] = sum(1 for r in reach.values() if not r.ok)

    # Open episodes: the device_health rows not yet stamped resolved, per patient and whose
    # phone they are about (None: the patient's; a user id: a caregiver who gives doses).
    episodes: dict[tuple[int, int | None], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for rid, patient_id, subject in db.execute(
        select(Reminder.id, Reminder.patient_id, Reminder.subject).where(
            Reminder.kind == KIND, Reminder.patient_id.is_not(None)
        )
    ):
        if not (subject or {}).get("resolved_at"):
            episodes[patient_id, (subject or {}).get("giver_user_id")].append(
                (rid, dict(subject or {}))
            )

    wanted: list[dict[str, Any]] = []
    phones: dict[tuple[int, int | None], Reach] = {
        (patient_id, None): reach[user_id] for patient_id, user_id in own.items()
    }
    for patient_id, users in givers.items():
        for user_id in users:
            phones[patient_id, user_id] = reach[user_id]
    for key in set(episodes) - set(phones):  # no longer one who gives the doses
        _resolve(db, key[0], episodes[key], now)
        counts["resolved"] += 1
    for (patient_id, giver), state in phones.items():
        open_rows = episodes.get((patient_id, giver), [])
        if state.ok:
            if open_rows:
                _resolve(db, patient_id, open_rows, now)
                counts["resolved"] += 1
            continue
        episode = next(
            (s["episode"] for _, s in open_rows if isinstance(s.get("episode"), str)),
            _episode_stamp(now),
        )
        told = alerted.get(patient_id, set())
        if giver is not None:
            # A caregiver who gives the doses: the patient (with a login) and the other
            # caregivers hear of it; with nobody else, the care team.
            told = (told - {giver}) | ({own[patient_id]} if patient_id in own else set())
            told = told or givers_team(db, patient_id)
        whose = "" if giver is None else f"giver:{giver}:"
        about: dict[str, Any] = {"problem": state.problem, "episode": episode}
        if giver is not None:
            about["giver_user_id"] = giver
        for recipient in sorted(told):
            wanted.append(
                {
                    "dedupe_key": f"{KIND}:{patient_id}:{whose}{episode}:{recipient}",
                    "kind": KIND,
                    "user_id": recipient,
                    "patient_id": patient_id,
                    "due_at": now,
                    "not_after": now + ALERT_LATENESS,
                    "subject": about,
                }
            )
    # Inside a recipient's quiet hours: due at their end, or dropped (one query for all).
    for row in apply_quiet_hours(db, wanted, {}):
        row.pop("next_attempt_at", None)  # enqueue sets it to due_at
        counts["alerts"] += enqueue(db, **row) is not None
    return counts


def _caregivers_who_give(db: Session, now: datetime) -> dict[int, set[int]]:
    """patient id -> the caregivers (not the patient) who get the dose reminders of an
    active scheduled medicine: their phones matter as much as the patient's own."""
    meds: dict[int, list[int]] = defaultdict(list)
    for med_id, patient_id in db.execute(
        select(Medication.id, Medication.patient_id).where(
            Medication.status == "active", Medication.timing.is_not(None)
        )
    ):
        meds[patient_id].append(med_id)
    if not meds:
        return {}
    # Only a managed patient or one with a setting has givers besides their own login.
    chosen = select(DoseGivers.patient_id)
    patients = list(
        db.scalars(
            select(Patient).where(
                Patient.id.in_(meds), Patient.user_id.is_(None) | Patient.id.in_(chosen)
            )
        )
    )
    found: dict[int, set[int]] = {}
    for patient_id, circle in circles(db, patients, now).items():
        users = {u for m in meds[patient_id] for u in circle.givers(m)}
        if circle.patient_user is not None:
            users.discard(circle.patient_user)
        if users:
            found[patient_id] = users
    return found


def givers_team(db: Session, patient_id: int) -> set[int]:
    """The care team of a patient whose only caregiver's phone cannot be reached."""
    return care_team_user_ids(db, [patient_id]).get(patient_id, set())


def _resolve(
    db: Session, patient_id: int, rows: list[tuple[int, dict[str, Any]]], now: datetime
) -> None:
    stamp = now.isoformat()
    for rid, subject in rows:
        restamp(db, rid, {**subject, "resolved_at": stamp})
    cancel(db, reason=RESTORED, ids=[rid for rid, _ in rows])


def still_unreachable(db: Session, reminders: Sequence[Reminder]) -> Mapping[int, str]:
    """The dispatcher's relevance check: an alert about a phone that is reachable again
    (fixed since the last check, e.g. while the alert waited for the morning) is dropped --
    the patient's own, or that of the caregiver who gives the doses it is about."""
    ids = {r.patient_id for r in reminders if r.patient_id is not None}
    users: dict[int, int] = {
        pid: uid
        for pid, uid in db.execute(select(Patient.id, Patient.user_id).where(Patient.id.in_(ids)))
        if uid is not None
    }

    def whose(r: Reminder) -> int | None:
        giver = (r.subject or {}).get("giver_user_id")
        if isinstance(giver, int) and not isinstance(giver, bool):
            return giver
        return users.get(r.patient_id) if r.patient_id is not None else None

    phones = {r.id: whose(r) for r in reminders}
    reach = reach_of_all(db, {u for u in phones.values() if u is not None}, clock_now())
    return {rid: RESTORED for rid, u in phones.items() if u is not None and reach[u].ok}


def replan_alerts(db: Session, user_id: int, now: datetime) -> int:
    """The user's quiet hours changed: their pending alerts are due now, or at the end of
    the new quiet period, or dropped if that is past ``not_after``. Returns rows changed."""
    pending = list(
        db.execute(
            select(Reminder.id, Reminder.due_at, Reminder.not_after).where(
                Reminder.kind == KIND, Reminder.user_id == user_id, Reminder.state == "pending"
            )
        )
    )
    if not pending:
        return 0
    rows = [
        {"id": rid, "kind": KIND, "user_id": user_id, "due_at": now, "not_after": not_after}
        for rid, _, not_after in pending
    ]
    kept: dict[int, datetime] = {r["id"]: r["due_at"] for r in apply_quiet_hours(db, rows, {})}
    dropped = [rid for rid, _, _ in pending if rid not in kept]
    changed = cancel(db, reason="quiet_hours", ids=dropped) if dropped else 0
    for rid, due_at, _ in pending:
        due = kept.get(rid)
        # Held until the new end, or not held any more (due now); one already due stays.
        if due is None or due == due_at or (due == now and due_at <= now):
            continue
        changed += reschedule(db, rid, due)
    return changed
