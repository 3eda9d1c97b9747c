"""Push texts, localized through gettext catalogs (Babel), in the recipient's language.

``render(reminder, user)`` is the dispatcher's renderer (``dispatch.set_renderer``): it picks
the catalog from the *recipient's* language (its primary subtag; English when we have no
catalog for it), so a Spanish-speaking patient and her English-speaking daughter each read
their own language.

Lock-screen safe by default: a push shows no medication name, strength, appointment title or
anything clinical unless the recipient opted in (``User.show_details_on_lock_screen``) *and*,
for a push about someone else, may see that detail (the ``disclose`` question the worker
wires in: ``backend.reminders.audience.may_disclose``; unwired, nothing is disclosed about
anyone else). A push
about someone else (a caregiver's alert, a managed patient's dose) names that person by their
preferred first name only. Times are formatted for the recipient's locale, in the zone of the
thing they are about (an appointment's own zone).

Catalogs live in ``notifications/locale/<lang>/LC_MESSAGES/messages.po``; the compiled
``.mo`` files are committed next to them (and shipped as package data). After editing a
``.po``, run ``python -m notifications.texts`` to recompile; a test fails when a ``.mo`` does
not match its ``.po`` or a message in this module has no translation.

Data for a batch is looked up once: the first render in a dispatcher session loads the
patients, medications and appointments of every reminder that session holds (a handful of
queries per batch, not per reminder).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from backend.models import Appointment, Medication, Patient, User
from backend.models.outbox import Reminder

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "es")


def N_(message: str) -> str:
    """Mark a string for extraction; translated later, where the language is known."""
    return message


def language_of(tag: str | None) -> str:
    """The catalog for a BCP 47 tag: its primary subtag when we have it, else English."""
    primary = (tag or "").replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


def compile_po(lang: str) -> bytes:
    """The ``.mo`` bytes for a language's ``.po`` (what ``pybabel compile`` writes)."""
    with po_path(lang).open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@cache
def translations(lang: str) -> NullTranslations:
    """The loaded catalog (compiled from the ``.po`` if a ``.mo`` is missing)."""
    lang = language_of(lang)
    if mo_path(lang).exists():
        with mo_path(lang).open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if po_path(lang).exists():
        return Translations(io.BytesIO(compile_po(lang)), domain=DOMAIN)
    return NullTranslations()


# -- what a push may say ---------------------------------------------------------------


@dataclass
class _Context:
    """Everything a batch's texts need, loaded once per dispatcher session."""

    covered: set[int] = field(default_factory=set)
    patients: dict[int, Patient] = field(default_factory=dict)
    patient_users: dict[int, User] = field(default_factory=dict)
    medications: dict[int, Medication] = field(default_factory=dict)
    appointments: dict[int, Appointment] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)  # people a push names (a taker)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _load(db: Session, ctx: _Context, reminders: Iterable[Reminder]) -> None:
    todo = [r for r in reminders if r.id not in ctx.covered]
    if not todo:
        return
    patient_ids = {r.patient_id for r in todo if r.patient_id is not None} - set(ctx.patients)
    med_ids = {_int((r.subject or {}).get("medication_id")) for r in todo} - {None}
    appt_ids = {_int((r.subject or {}).get("appointment_id")) for r in todo} - {None}
    named_ids = {_int((r.subject or {}).get("taken_by_user_id")) for r in todo} - {None}
    if patient_ids:
        for patient in db.scalars(select(Patient).where(Patient.id.in_(patient_ids))):
            ctx.patients[patient.id] = patient
        user_ids = {p.user_id for p in ctx.patients.values() if p.user_id is not None} - set(
            ctx.patient_users
        )
        if user_ids:
            for user in db.scalars(select(User).where(User.id.in_(user_ids))):
                ctx.patient_users[user.id] = user
    med_ids -= set(ctx.medications)
    if med_ids:
        for med in db.scalars(select(Medication).where(Medication.id.in_(med_ids))):
            ctx.medications[med.id] = med
    appt_ids -= set(ctx.appointments)
    if appt_ids:
        for appt in db.scalars(select(Appointment).where(Appointment.id.in_(appt_ids))):
            ctx.appointments[appt.id] = appt
    named_ids -= set(ctx.users)
    if named_ids:
        for user in db.scalars(select(User).where(User.id.in_(named_ids))):
            ctx.users[user.id] = user
    ctx.covered.update(r.id for r in todo)


def _context(reminder: Reminder) -> _Context:
    db = object_session(reminder)
    if db is None:
        ctx = _Context()
        ctx.covered.add(reminder.id)
        return ctx
    found = db.info.get("notifications.texts")
    ctx = found if isinstance(found, _Context) else _Context()
    db.info["notifications.texts"] = ctx
    if reminder.id not in ctx.covered:
        # Everything the dispatcher loaded in this session: the whole batch at once.
        batch = [obj for obj in db.identity_map.values() if isinstance(obj, Reminder)]
        _load(db, ctx, [reminder, *batch])
    return ctx


def first_name(patient: Patient | None, patient_user: User | None) -> str | None:
    """The name a push about a patient uses: their preferred name, else first name only."""
    if patient_user is not None and (patient_user.preferred_name or "").strip():
        return (patient_user.preferred_name or "").strip()
    if patient is not None and patient.display_name.strip():
        return patient.display_name.split()[0]
    if patient_user is not None and (patient_user.display_name or "").strip():
        return (patient_user.display_name or "").split()[0]
    return None


def user_first_name(user: User | None) -> str | None:
    """A person named in someone else's push (who took an alert): their preferred name, else
    their first name only."""
    if user is None:
        return None
    name = (user.preferred_name or "").strip() or (user.display_name or "").strip()
    return name.split()[0] if name else None


def _medication_label(med: Medication) -> str:
    return f"{med.name} {med.strength}" if med.strength else med.name


@dataclass
class _Facts:
    lang: str
    own: bool  # the recipient is the patient the reminder is about
    appointment_details: bool
    name: str | None
    medication: str | None
    appointment: Appointment | None
    taker: str | None  # who took the alert ("Ana is on it")


def _facts(reminder: Reminder, user: User, disclose: Disclose | None) -> _Facts:
    ctx = _context(reminder)
    subject = reminder.subject or {}
    patient = ctx.patients.get(reminder.patient_id) if reminder.patient_id else None
    patient_user = ctx.patient_users.get(patient.user_id) if patient and patient.user_id else None
    own = patient is None or patient.user_id == user.id
    med_id = _int(subject.get("medication_id"))
    med = ctx.medications.get(med_id) if med_id is not None else None
    if med is not None and patient is not None and med.patient_id != patient.id:
        med = None  # never name another person's medicine
    appt_id = _int(subject.get("appointment_id"))
    appt = ctx.appointments.get(appt_id) if appt_id is not None else None
    if appt is not None and patient is not None and appt.patient_id != patient.id:
        appt = None

    def shown(detail: str) -> bool:
        if not user.show_details_on_lock_screen:
            return False
        return own or (disclose is not None and disclose(reminder, user, detail))

    return _Facts(
        lang=language_of(user.language),
        own=own,
        appointment_details=appt is not None and shown("appointment"),
        name=None if own else first_name(patient, patient_user),
        medication=_medication_label(med) if (med is not None and shown("medication")) else None,
        appointment=appt,
        taker=user_first_name(ctx.users.get(_int(subject.get("taken_by_user_id")) or 0)),
    )


# -- the texts -------------------------------------------------------------------------

T_MEDICINE = N_("Medicine reminder")
T_CARE_ALERT = N_("Care alert")
T_APPOINTMENT = N_("Upcoming appointment")
T_REFILL = N_("Refill reminder")
T_NOTIFICATIONS = N_("Notifications")
T_TODAY = N_("Today")
T_DEFAULT = N_("Reminder")
T_MESSAGE = N_("New message")
T_URGENT = N_("Urgent: care team alert")
T_CHECKIN = N_("Check-in")

# (own, with medication) / (about someone, with medication), per kind.
_DOSE = {
    (True, False): N_("It's time for your medicine."),
    (True, True): N_("It's time for your %(medication)s."),
    (False, False): N_("It's time for %(name)s's medicine."),
    (False, True): N_("It's time for %(name)s's %(medication)s."),
}
_FOLLOWUP = {
    (True, False): N_("Did you take your medicine? Tap to log it."),
    (True, True): N_("Did you take your %(medication)s? Tap to log it."),
    (False, False): N_("Has %(name)s taken their medicine? Tap to log it."),
    (False, True): N_("Has %(name)s taken their %(medication)s? Tap to log it."),
}
_MISSED = {
    (True, False): N_("A scheduled dose has not been logged."),
    (True, True): N_("A scheduled dose of %(medication)s has not been logged."),
    (False, False): N_("%(name)s has not logged a scheduled dose."),
    (False, True): N_("%(name)s has not logged a dose of %(medication)s."),
}
# "Ana is on it", in place of the missed-dose alert on the others' phones.
_TAKEN = {
    (True, False): N_("%(taker)s is on it: your missed dose."),
    (True, True): N_("%(taker)s is on it: your missed dose of %(medication)s."),
    (False, False): N_("%(taker)s is on it: %(name)s's missed dose."),
    (False, True): N_("%(taker)s is on it: %(name)s's missed dose of %(medication)s."),
}
# An as-needed dose over its 24-hour maximum (backend.reminders.prn).
_OVER_LIMIT = {
    (True, False): N_("You have taken more of an as-needed medicine than its daily maximum."),
    (True, True): N_("You have taken more %(medication)s than its daily maximum."),
    (False, False): N_("%(name)s has taken more of an as-needed medicine than its daily maximum."),
    (False, True): N_("%(name)s has taken more %(medication)s than its daily maximum."),
}
_TAKEN_SOMEONE = N_("Someone is on it: the missed dose is taken care of.")
_REFILL = {
    (True, False): N_("One of your medicines is running low. Time to order a refill."),
    (True, True): N_("Your %(medication)s is running low. Time to order a refill."),
    (False, False): N_("One of %(name)s's medicines is running low."),
    (False, True): N_("%(name)s's %(medication)s is running low."),
}
# (own, with title)
_APPOINTMENT = {
    (True, False): N_("You have an appointment on %(day)s at %(time)s."),
    (True, True): N_("%(title)s on %(day)s at %(time)s."),
    (False, False): N_("%(name)s has an appointment on %(day)s at %(time)s."),
    (False, True): N_("%(name)s: %(title)s on %(day)s at %(time)s."),
}
_APPOINTMENT_UNKNOWN = {
    True: N_("You have an appointment coming up."),
    False: N_("%(name)s has an appointment coming up."),
}
_DEVICE = {
    True: N_("Reminders are not reaching your phone. Open the app to check its settings."),
    False: N_("%(name)s's phone is not receiving reminders."),
}
# A caregiver who gives the doses cannot be reached (subject.giver_user_id).
_DEVICE_GIVER = {
    True: N_("Your medicine reminders are not reaching a caregiver who gives them."),
    False: N_("%(name)s's medicine reminders are not reaching a caregiver who gives them."),
}
_PROBLEM = {
    "no_device": N_("The app is not signed in on any phone."),
    "notifications_off": N_("Notifications are turned off."),
    "tokens_rejected": N_("The app needs to be opened again."),
    "not_seen": N_("The app has not been opened for 7 days."),
}
_SUMMARY_NONE = N_("Open the app to see today's plan.")
_DEFAULT = N_("Open the app for details.")
# A message push never carries the thread's subject or text, whatever the lock-screen setting.
_MESSAGE = {
    "patient": N_("New message from your care team"),
    "care_team": N_("New message from a patient"),
}
# A check-in prompt never names the questionnaire (a PHQ-9 on a lock screen says too much).
_CHECKIN = {
    True: N_("Your care team has a few questions for you"),
    False: N_("A check-in for %(name)s is waiting"),
}
# An urgent worklist item (a PHQ-9 item-9 answer, a critical reading): never who or why.
_URGENT = N_("A patient on your care team needs attention now. Open the worklist.")


Count = Callable[[Reminder], int | None]
"""The number a push names, counted when it is sent: the things on a morning summary's day,
the medicines a refill push is about (None: not known)."""

Disclose = Callable[[Reminder, User, str], bool]
"""May this push name that detail ("medication", "appointment") to its recipient?"""


def renderer(
    count: Count | None = None, disclose: Disclose | None = None
) -> Callable[[Reminder, User], Rendered]:
    """The dispatcher's renderer, with the domain's answers wired in (the worker's)."""
    return partial(render, count=count, disclose=disclose)


Rendered = tuple[str, str, dict[str, str]]


def render(
    reminder: Reminder,
    user: User,
    count: Count | None = None,
    disclose: Disclose | None = None,
) -> Rendered:
    """(title, body, extra data) in the recipient's language; see the module docstring."""
    facts = _facts(reminder, user, disclose)
    tr = translations(facts.lang)
    _ = tr.gettext
    subject = reminder.subject or {}
    # A push about someone whose name we cannot find reads as if it were the recipient's.
    own = facts.own or facts.name is None
    values: dict[str, Any] = {
        "name": facts.name,
        "medication": facts.medication,
        "taker": facts.taker,
    }
    with_med = facts.medication is not None
    kind = reminder.kind
    extra: dict[str, str] = {}
    if kind == "dose":
        title, body = _(T_MEDICINE), _(_DOSE[own, with_med]) % values
    elif kind == "dose_followup":
        title, body = _(T_MEDICINE), _(_FOLLOWUP[own, with_med]) % values
    elif kind == "missed_dose_alert":
        title, body = _(T_CARE_ALERT), _(_MISSED[own, with_med]) % values
    elif kind == "alert_taken":
        title = _(T_CARE_ALERT)
        body = _(_TAKEN[own, with_med]) % values if facts.taker else _(_TAKEN_SOMEONE)
    elif kind == "prn_over_limit":
        title, body = _(T_CARE_ALERT), _(_OVER_LIMIT[own, with_med]) % values
    elif kind == "refill":
        # Several medicines low the same day are one push that counts them, never names them.
        many = count(reminder) if count is not None else None
        title = _(T_REFILL)
        if many is not None and many > 1:
            body = _refill_many(tr, own, many) % {**values, "num": many}
            extra["count"] = str(many)
        else:
            body = _(_REFILL[own, with_med]) % values
    elif kind == "appointment":
        title, body = _(T_APPOINTMENT), _appointment_body(facts, own, values)
    elif kind == "device_health":
        title = _(T_NOTIFICATIONS) if own else _(T_CARE_ALERT)
        texts = _DEVICE_GIVER if "giver_user_id" in subject else _DEVICE
        body = _(texts[own]) % values
        problem = subject.get("problem")
        if isinstance(problem, str) and problem in _PROBLEM:
            body = f"{body} {_(_PROBLEM[problem])}"
    elif kind == "summary":
        # Counted now, for the whole batch (backend.reminders.morning_summary.count_for).
        things = count(reminder) if count is not None else None
        title = _(T_TODAY)
        if things is None:
            body = _(_SUMMARY_NONE)
        else:
            body = tr.ngettext(
                "You have %(num)d thing planned today.",
                "You have %(num)d things planned today.",
                things,
            ) % {"num": things}
    elif kind == "message":
        audience = subject.get("audience")
        title = _(T_MESSAGE)
        body = _(_MESSAGE[audience if audience == "care_team" else "patient"])
    elif kind == "urgent_flag":
        title, body = _(T_URGENT), _(_URGENT)
    elif kind == "checkin_prompt":
        title, body = _(T_CHECKIN), _(_CHECKIN[own]) % values
    else:
        title, body = _(T_DEFAULT), _(_DEFAULT)
    return title, body, {"lang": facts.lang, **extra}


def _refill_many(tr: NullTranslations, own: bool, many: int) -> str:
    if own:
        return tr.ngettext(
            "%(num)d of your medicines is running low. Time to order a refill.",
            "%(num)d of your medicines are running low. Time to order a refill.",
            many,
        )
    return tr.ngettext(
        "%(num)d of %(name)s's medicines is running low.",
        "%(num)d of %(name)s's medicines are running low.",
        many,
    )


def _appointment_body(facts: _Facts, own: bool, values: dict[str, Any]) -> str:
    _ = translations(facts.lang).gettext
    appt = facts.appointment
    if appt is None:
        return _(_APPOINTMENT_UNKNOWN[own]) % values
    try:
        zone = ZoneInfo(appt.time_zone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local: datetime = appt.start_at.astimezone(zone)
    values = {
        **values,
        "title": appt.title if facts.appointment_details else None,
        "day": format_date(local, "EEEE", locale=facts.lang),
        "time": format_time(local, "short", locale=facts.lang),
    }
    return _(_APPOINTMENT[own, values["title"] is not None]) % values


# -- calendar feed titles ----------------------------------------------------------------
# A subscribed calendar is a lock screen too (widgets, watches, a shared family calendar):
# without the feed's own opt-in a title names neither the appointment nor the medicine,
# only whose it is (the first name, as a push does).

FEED_NAME = N_("Care calendar")
_FEED_TITLE = {
    ("appointment", True): N_("Appointment"),
    ("appointment", False): N_("Appointment (%(name)s)"),
    ("dose", True): N_("Medicine time"),
    ("dose", False): N_("Medicine time (%(name)s)"),
}
_FEED_DETAIL_OF = N_("%(detail)s (%(name)s)")


def feed_title(tr: NullTranslations, kind: str, name: str | None, detail: str | None = None) -> str:
    """A calendar event's title in ``tr``'s language (:func:`translations`, loaded once per
    feed): ``detail`` (the appointment's title, the medicine) only when given, i.e. when the
    feed's owner opted in; ``name`` for someone else's event."""
    _ = tr.gettext
    if detail is not None:
        return detail if name is None else _(_FEED_DETAIL_OF) % {"detail": detail, "name": name}
    return _(_FEED_TITLE[kind, name is None]) % {"name": name}


def feed_name(tr: NullTranslations) -> str:
    return tr.gettext(FEED_NAME)


def _compile_all() -> None:
    for lang in LANGUAGES:
        mo_path(lang).write_bytes(compile_po(lang))
        print(f"compiled {mo_path(lang)}")


if __name__ == "__main__":
    _compile_all()
