"""Private calendar feeds: a secret URL per person that a calendar app subscribes to.

- One feed per person. Its secret (32 random bytes, URL-safe) is shown once, when the feed
  is made or rotated; only its SHA-256 is stored, and a fetch finds the feed by that hash.
  Rotating replaces the hash and revoking deletes the row, so the old URL is unknown at
  once -- the same 404 as a URL that never existed.
- What a fetch holds is decided at that fetch, by the one access policy: the owner's own
  appointments; those of each person they care for whose grant holds ``view_appointments``
  now; for a care-team member, the appointments they are the provider of (their home
  visits) on patients they may still see -- not the whole panel's diary. A grant changed
  or ended shows in the next fetch.
- Dose times only when the owner turned them on, and only for medicines the owner may see
  (``view_medications``), a fortnight ahead (a calendar full of doses months out helps
  nobody and grows fast).
- Privacy by default: titles as on a lock screen ("Appointment", "Medicine time (Ana)"), no
  place, no notes; the appointment's own title, place, provider and notes and the
  medicine's name only when the owner opted in (``show_details``).
- Every fetch is a read of each patient shown, written to the access log (``calendar_feed``)
  with the feed's owner as the actor; the patient's own feed is not (the log is of others).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from babel.support import NullTranslations
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access import Action, PatientAccess, Role, patients_cared_for, record_access, resolve
from backend.clock import now
from backend.errors import ServiceError
from backend.models import Appointment, CalendarFeed, Medication, Patient, User
from backend.models.calendar_feed import hash_secret
from backend.schedule.medicines import occurrences
from backend.services.ics import CalEvent, build
from notifications.texts import feed_name, feed_title, first_name, translations

SECRET_BYTES = 32  # 256 bits: nothing to guess, so a fast hash is enough
ACCESS_ACTION = "calendar_feed"
_ONE_FEED = "You already have a calendar feed; rotate it for a new URL."
DAYS_BACK = 30
DAYS_AHEAD = 180
DOSE_DAYS_BACK = 1
DOSE_DAYS_AHEAD = 14
DOSE_MINUTES = 15  # how long a dose time shows in a calendar
UID_DOMAIN = "care-companion"


def of_user(session: Session, user: User) -> CalendarFeed | None:
    return session.scalar(select(CalendarFeed).where(CalendarFeed.user_id == user.id))


def by_secret(session: Session, secret: str) -> CalendarFeed | None:
    """The feed whose URL holds ``secret``, found by its hash; None for any other string."""
    found = select(CalendarFeed).where(CalendarFeed.secret_hash == hash_secret(secret))
    return session.scalar(found)


def create(session: Session, user: User, settings: dict[str, Any]) -> tuple[CalendarFeed, str]:
    """A new feed and its secret (shown this once); a person has one feed at most."""
    if of_user(session, user) is not None:
        raise ServiceError(409, _ONE_FEED)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    at = now()
    feed = CalendarFeed(
        user_id=user.id, secret_hash=hash_secret(secret), created_at=at, rotated_at=at
    )
    feed.show_details = bool(settings.get("show_details", False))
    feed.include_doses = bool(settings.get("include_doses", False))
    session.add(feed)
    try:
        session.flush()
    except IntegrityError:  # the same person's two first requests raced
        raise ServiceError(409, _ONE_FEED) from None
    return feed, secret


def rotate(session: Session, feed: CalendarFeed) -> str:
    """A new secret; the old URL stops working with this transaction."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    feed.secret_hash = hash_secret(secret)
    feed.rotated_at = now()
    session.flush()
    return secret


def update(session: Session, feed: CalendarFeed, changes: dict[str, Any]) -> None:
    for name in ("show_details", "include_doses"):
        if name in changes:
            setattr(feed, name, bool(changes[name]))
    session.flush()


def revoke(session: Session, feed: CalendarFeed) -> None:
    session.delete(feed)
    session.flush()


# -- the feed's content ------------------------------------------------------------------


@dataclass
class _Shown:
    """A patient whose events the feed holds, and which of them."""

    access: PatientAccess
    name: str | None  # None: the owner's own
    appointments: str  # "all", "provided" (those the owner is the provider of) or "none"
    doses: bool = False
    events: list[CalEvent] = field(default_factory=list)


def render(session: Session, feed: CalendarFeed) -> bytes:
    """The feed as RFC 5545 bytes, as the owner may see it at this moment."""
    owner = session.get(User, feed.user_id)
    assert owner is not None  # a feed row always has its user (foreign key)
    at = now()
    shown = _scope(session, owner, feed, at)
    for item in shown.values():
        record_access(item.access, ACCESS_ACTION)
    tr = translations(owner.language)
    events = _appointment_events(session, owner, feed, shown, at, tr)
    if feed.include_doses:
        events += _dose_events(session, feed, shown, at, tr)
    start, end = _window(at)
    uid = f"feed-{feed.id}@{UID_DOMAIN}"
    return build(uid, feed_name(tr), events, (start.date(), end.date()))


def _scope(session: Session, owner: User, feed: CalendarFeed, at: datetime) -> dict[int, _Shown]:
    shown: dict[int, _Shown] = {}
    for access in patients_cared_for(owner):
        appointments = access.allows(Action.VIEW_APPOINTMENTS)
        doses = feed.include_doses and access.allows(Action.VIEW_MEDICATIONS)
        if appointments or doses:
            which = "all" if appointments else "none"
            shown[access.patient.id] = _Shown(access, _name(session, access), which, doses)
    for patient_id in _provider_patients(session, owner, at):
        if patient_id in shown:
            continue
        team = resolve(owner, patient_id)
        if team and team.role is Role.CARE_TEAM and team.allows(Action.VIEW_APPOINTMENTS):
            shown[patient_id] = _Shown(team, _name(session, team), "provided")
    return shown


def _window(
    at: datetime, back: int = DAYS_BACK, ahead: int = DAYS_AHEAD
) -> tuple[datetime, datetime]:
    """What the feed holds around ``at``: appointments by default, or (in days) the doses."""
    return at - timedelta(days=back), at + timedelta(days=ahead)


def _provider_patients(session: Session, owner: User, at: datetime) -> list[int]:
    start, end = _window(at)
    return list(
        session.scalars(
            select(Appointment.patient_id)
            .where(
                Appointment.provider_user_id == owner.id,
                Appointment.end_at > start,
                Appointment.start_at < end,
            )
            .distinct()
        )
    )


def _name(session: Session, access: PatientAccess) -> str | None:
    if access.role is Role.SELF:
        return None
    patient: Patient = access.patient
    user = session.get(User, patient.user_id) if patient.user_id is not None else None
    return first_name(patient, user) or "?"


def _appointment_events(
    session: Session,
    owner: User,
    feed: CalendarFeed,
    shown: dict[int, _Shown],
    at: datetime,
    tr: NullTranslations,
) -> list[CalEvent]:
    everything = [pid for pid, s in shown.items() if s.appointments == "all"]
    provided = [pid for pid, s in shown.items() if s.appointments == "provided"]
    if not everything and not provided:
        return []
    start, end = _window(at)
    rows = session.scalars(
        select(Appointment)
        .where(
            or_(
                Appointment.patient_id.in_(everything),
                and_(
                    Appointment.patient_id.in_(provided),
                    Appointment.provider_user_id == owner.id,
                ),
            ),
            Appointment.end_at > start,
            Appointment.start_at < end,
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    return [_appointment_event(a, shown[a.patient_id], feed, tr) for a in rows]


def _appointment_event(
    appt: Appointment, who: _Shown, feed: CalendarFeed, tr: NullTranslations
) -> CalEvent:
    details = feed.show_details
    return CalEvent(
        uid=f"appointment-{appt.id}@{UID_DOMAIN}",
        start=appt.start_at,
        end=appt.end_at,
        zone=appt.time_zone,
        summary=feed_title(tr, "appointment", who.name, appt.title if details else None),
        stamp=appt.updated_at,
        sequence=appt.sequence,
        cancelled=appt.status == "cancelled",
        location=(appt.location or appt.video_url) if details else None,
        description=_notes(appt) if details else None,
    )


def _notes(appt: Appointment) -> str | None:
    lines = [
        appt.provider_name,
        appt.video_url,
        appt.preparation_notes,
    ]
    text = "\n".join(line for line in lines if line)
    return text or None


def _dose_events(
    session: Session,
    feed: CalendarFeed,
    shown: dict[int, _Shown],
    at: datetime,
    tr: NullTranslations,
) -> list[CalEvent]:
    by_patient = {pid: s for pid, s in shown.items() if s.doses}
    if not by_patient:
        return []
    start, end = _window(at, DOSE_DAYS_BACK, DOSE_DAYS_AHEAD)
    meds = session.scalars(
        select(Medication)
        .where(Medication.patient_id.in_(by_patient), Medication.status == "active")
        .order_by(Medication.id)
    )
    events = []
    for med in meds:
        who = by_patient[med.patient_id]
        label = f"{med.name} {med.strength}" if med.strength else med.name
        title = feed_title(tr, "dose", who.name, label if feed.show_details else None)
        for occ in occurrences(med, who.access.patient, start, end):
            events.append(
                CalEvent(
                    uid=f"dose-{med.id}-{occ.slot_key}@{UID_DOMAIN}",
                    start=occ.at,
                    end=occ.at + timedelta(minutes=DOSE_MINUTES),
                    zone=occ.zone,
                    summary=title,
                    stamp=med.updated_at,
                    busy=False,
                )
            )
    return events
