"""Push texts: the recipient's language, lock-screen safe, first names only; the catalogs.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from backend import db
from backend.models import Appointment, CaregiverGrant, Medication, Reminder, User
from notifications import enqueue, register_device
from notifications.channels.console import ConsoleChannel
from notifications.dispatch import dispatch_once
from notifications.texts import (
    LANGUAGES,
    compile_po,
    first_name,
    language_of,
    mo_path,
    po_path,
    render,
)
from tests.conftest import START, World
from tests.wiring import WIRED

# -- the catalogs ------------------------------------------------------------------------


def _messages(mo: bytes) -> dict[Any, str]:
    catalog = gettext.GNUTranslations(io.BytesIO(mo))._catalog  # type: ignore[attr-defined]
    return {k: v for k, v in catalog.items() if k != ""}  # "" is the header


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_committed_mo_matches_its_po(lang: str) -> None:
    # Compared as messages, not bytes: the header names the Babel version that compiled it.
    assert _messages(mo_path(lang).read_bytes()) == _messages(compile_po(lang)), (
        f"{mo_path(lang)} is stale: run python -m notifications.texts"
    )


def test_every_message_in_the_code_is_translated_in_every_catalog() -> None:
    source = Path(__file__).resolve().parent.parent / "notifications" / "texts.py"
    keywords = {"N_": None, "ngettext": (1, 2)}
    extracted = {m[1] for m in extract_from_file("python", source, keywords=keywords)}
    assert len(extracted) > 30
    for lang in LANGUAGES:
        with po_path(lang).open("rb") as fp:
            catalog = read_po(fp, locale=lang)
        assert not [(m.id, errors) for m, errors in catalog.check()], lang
        for msgid in extracted:
            key = msgid[0] if isinstance(msgid, tuple) else msgid
            message = catalog.get(key)
            assert message is not None, (lang, msgid)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings), (lang, msgid)


def test_languages_fall_back_to_english() -> None:
    assert language_of("es-US") == "es"
    assert language_of("es_MX") == "es"
    assert language_of("ES") == "es"
    assert language_of("en-GB") == "en"
    assert language_of("fr-CA") == "en"
    assert language_of(None) == "en"
    assert language_of("") == "en"


# -- rendering -----------------------------------------------------------------------------


@pytest.fixture
def people(world: World) -> dict[str, Any]:
    session = db.session()
    users = world.users
    med = Medication(
        patient_id=world.maria,
        name="Metformin",
        strength="500 mg",
        start_date=date(2026, 11, 1),
        home_time_zone="America/New_York",
        created_by_user_id=users["maria"].id,
    )
    chen_med = Medication(
        patient_id=world.chen,
        name="Donepezil",
        strength="5 mg",
        start_date=date(2026, 11, 1),
        home_time_zone="America/Los_Angeles",
        created_by_user_id=users["david"].id,
    )
    appt = Appointment(
        patient_id=world.maria,
        title="Cardiology follow-up",
        type="in_person",
        start_at=START + timedelta(days=1),  # Thursday 10:00 in New York
        end_at=START + timedelta(days=1, minutes=30),
        time_zone="America/New_York",
        created_by_user_id=users["maria"].id,
        updated_by_user_id=users["maria"].id,
    )
    session.add_all([med, chen_med, appt])
    session.commit()
    return {"med": med.id, "chen_med": chen_med.id, "appt": appt.id}


_keys = iter(range(1_000_000))


def remind(kind: str, user: User, patient_id: int | None, **subject: Any) -> int:
    row = enqueue(
        db.session(),
        dedupe_key=f"t:{kind}:{next(_keys)}",
        kind=kind,
        user_id=user.id,
        patient_id=patient_id,
        due_at=START,
        not_after=START + timedelta(hours=2),
        subject=subject,
    )
    db.session.commit()
    assert row is not None
    return row.id


def rendered(engine: Engine, reminder_id: int) -> tuple[str, str, dict[str, str]]:
    """Render as the dispatcher does: a fresh session holding the reminder and recipient."""
    with Session(engine) as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        user = session.get(User, reminder.user_id)
        assert user is not None
        return WIRED.render(reminder, user)


def test_each_recipient_reads_their_own_language(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    to_maria = remind("dose", maria, world.maria, medication_id=people["med"], slot_key="08:00")
    to_ana = remind("missed_dose_alert", ana, world.maria, medication_id=people["med"])
    title, body, data = rendered(engine, to_maria)
    assert (title, body) == ("Recordatorio de medicamento", "Es hora de tomar su medicamento.")
    assert data == {"lang": "es"}
    title, body, data = rendered(engine, to_ana)
    assert (title, body) == ("Care alert", "María has not logged a scheduled dose.")
    assert data == {"lang": "en"}


def test_no_medicine_or_visit_details_on_the_lock_screen_unless_opted_in(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    ids = [
        remind("dose", maria, world.maria, medication_id=people["med"]),
        remind("dose_followup", maria, world.maria, medication_id=people["med"]),
        remind("refill", maria, world.maria, medication_id=people["med"]),
        remind("appointment", maria, world.maria, appointment_id=people["appt"]),
        remind("missed_dose_alert", ana, world.maria, medication_id=people["med"]),
        remind("appointment", ana, world.maria, appointment_id=people["appt"]),
    ]
    safe = [rendered(engine, i)[:2] for i in ids]
    for title, body in safe:
        text = f"{title} {body}"
        assert "Metformin" not in text and "500" not in text and "Cardiology" not in text
        assert "García" not in text  # first name only
    assert safe[3] == ("Próxima cita", "Tiene una cita el jueves a las 10:00.")
    assert safe[5] == (
        "Upcoming appointment",
        "María has an appointment on Thursday at 10:00\u202fAM.",
    )

    for persona in ("maria", "ana"):
        world.users[persona].show_details_on_lock_screen = True
    db.session.commit()
    detailed = [rendered(engine, i)[1] for i in ids]
    assert detailed == [
        "Es hora de tomar su Metformin 500 mg.",
        "¿Tomó su Metformin 500 mg? Toque para registrarlo.",
        "Su Metformin 500 mg se está acabando. Es hora de pedir más.",
        "Cardiology follow-up el jueves a las 10:00.",
        "María has not logged a dose of Metformin 500 mg.",
        "María: Cardiology follow-up on Thursday at 10:00\u202fAM.",
    ]


def test_a_managed_patients_reminders_name_them_by_first_name(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    david = world.users["david"]
    dose_id = remind("dose", david, world.chen, medication_id=people["chen_med"])
    follow = remind("dose_followup", david, world.chen, medication_id=people["chen_med"])
    refill = remind("refill", david, world.chen, medication_id=people["chen_med"])
    assert rendered(engine, dose_id)[:2] == ("Medicine reminder", "It's time for Wei's medicine.")
    assert rendered(engine, follow)[1] == "Has Wei taken their medicine? Tap to log it."
    assert rendered(engine, refill)[1] == "One of Wei's medicines is running low."


def test_another_patients_medicine_is_never_named(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    maria = world.users["maria"]
    maria.show_details_on_lock_screen = True
    db.session.commit()
    wrong = remind("dose", maria, world.maria, medication_id=people["chen_med"])
    assert rendered(engine, wrong)[1] == "Es hora de tomar su medicamento."


def test_every_kind_renders_with_missing_or_odd_subject_keys(
    ctx: Flask, engine: Engine, world: World
) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    bodies = {}
    for kind in (
        "dose",
        "dose_followup",
        "missed_dose_alert",
        "appointment",
        "refill",
        "device_health",
        "summary",
    ):
        for user in (maria, ana):
            for subject in ({}, {"medication_id": 999999, "appointment_id": "x"}):
                rid = remind(kind, user, world.maria, **subject)
                title, body, _ = rendered(engine, rid)
                assert title and body and "%(" not in title + body
                bodies[kind, user.id] = body
    assert bodies["appointment", ana.id] == "María has an appointment coming up."
    assert bodies["summary", maria.id] == "Abra la aplicación para ver el plan de hoy."
    # Without a patient at all, a push reads as the recipient's own.
    rid = remind("missed_dose_alert", ana, None)
    assert rendered(engine, rid)[1] == "A scheduled dose has not been logged."


def test_device_health_and_summary_texts(ctx: Flask, engine: Engine, world: World) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    alert = remind("device_health", ana, world.maria, problem="tokens_rejected")
    assert rendered(engine, alert)[:2] == (
        "Care alert",
        "María's phone is not receiving reminders. The app needs to be opened again.",
    )
    own = remind("device_health", maria, world.maria, problem="not_seen")
    assert rendered(engine, own)[1] == (
        "Los recordatorios no llegan a su teléfono. Abra la aplicación para revisar la "
        "configuración. La aplicación no se ha abierto en 7 días."
    )
    one = remind("summary", maria, world.maria, count=1)
    three = remind("summary", ana, None, count=3)
    assert rendered(engine, one)[1] == "Tiene 1 cosa planificada para hoy."
    assert rendered(engine, three)[1] == "You have 3 things planned today."


def test_first_names() -> None:
    from backend.models import Patient

    assert first_name(Patient(display_name="Wei Chen"), None) == "Wei"
    assert first_name(Patient(display_name="María García"), User(preferred_name="Mari")) == "Mari"
    assert first_name(Patient(display_name="María García"), User(preferred_name=" ")) == "María"
    assert first_name(None, None) is None


def test_a_batch_is_rendered_with_a_fixed_number_of_queries(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    ids = [remind("dose", maria, world.maria, medication_id=people["med"]) for _ in range(5)]
    ids += [remind("missed_dose_alert", ana, world.chen, medication_id=people["chen_med"])]
    ids += [remind("appointment", ana, world.maria, appointment_id=people["appt"])]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with Session(engine) as session:
        batch = list(session.scalars(select(Reminder).where(Reminder.id.in_(ids))))
        users = {u.id: u for u in session.scalars(select(User))}
        event.listen(engine, "before_cursor_execute", count)
        try:
            texts = [render(r, users[r.user_id]) for r in batch]
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(texts) == 7
    # patients, the patients' own users, medications, appointments: once for the batch.
    assert len(statements) <= 4, statements


def test_the_dispatcher_sends_the_rendered_texts(
    ctx: Flask, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    maria, ana = world.users["maria"], world.users["ana"]
    session = db.session()
    register_device(session, maria.id, "m", "maria-token", "android")
    register_device(session, ana.id, "a", "ana-token", "ios")
    session.commit()
    remind("dose", maria, world.maria, medication_id=people["med"])
    remind("missed_dose_alert", ana, world.maria, medication_id=people["med"])
    out = io.StringIO()
    result = dispatch_once(engine, ConsoleChannel(out), "texts", START, WIRED)
    assert result.sent == 2
    shown = out.getvalue()
    assert "Es hora de tomar su medicamento." in shown
    assert "María has not logged a scheduled dose." in shown


# -- the demo ------------------------------------------------------------------------------


def test_the_demo_runs_a_console_worker_that_stops_with_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with the server replaced: a due dose for María shows on her console phone
    in Spanish while the "server" runs, and the worker thread is gone when it returns."""
    import threading
    import time

    from click.testing import CliRunner
    from werkzeug import serving

    from backend.cli import cli
    from backend.clock import now
    from backend.models import Patient

    for var in ("DATABASE_URL", "TEST_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CARECOMPANION_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CARECOMPANION_ENV", "development")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    states: list[str] = []

    def serve(host: str, port: int, app: Flask, **_: Any) -> None:
        assert any(t.name == "demo-worker" for t in threading.enumerate())
        with app.app_context():
            session = db.session()
            maria = session.scalars(select(User).where(User.firebase_uid.like("%maria%"))).one()
            patient = session.scalars(select(Patient).where(Patient.user_id == maria.id)).one()
            row = enqueue(
                session,
                dedupe_key="demo:dose",
                kind="dose",
                user_id=maria.id,
                patient_id=patient.id,
                due_at=now(),
                not_after=now() + timedelta(hours=2),
            )
            session.commit()
            assert row is not None
            deadline = time.monotonic() + 30  # waiting on the worker thread, not on a clock
            while time.monotonic() < deadline:
                session.expire_all()
                state = session.get_one(Reminder, row.id).state
                if state not in ("pending", "claimed"):
                    break
                time.sleep(0.05)  # sleep-ok: polling the worker thread
            states.append(state)
            session.close()

    monkeypatch.setattr(serving, "run_simple", serve)
    try:
        result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    finally:
        db.init_engine(engine)
    assert result.exit_code == 0, result.output
    assert states == ["sent"]
    # a curl per persona, one for María's calendar feed and one for her FHIR record (as Ana)
    assert len([line for line in result.output.splitlines() if line.startswith("curl ")]) == 8
    assert "Reminders print below as each phone would show them" in result.output
    assert "Es hora de tomar su medicamento." in result.output
    # David gives his father's doses: the walkthrough's reminder for Wei reaches his phone.
    assert "It's time for Wei's medicine." in result.output
    assert not any(t.name == "demo-worker" for t in threading.enumerate())


# -- every door follows the policy: pushes ask for the permission their content needs -----


def _ana_grant_id(api: Any, world: World) -> int:
    grants = api.get(f"/patients/{world.maria}/caregivers", as_="maria").get_json()
    (ana,) = [g for g in grants if g["caregiver_user_id"] == world.users["ana"].id]
    return int(ana["id"])


def _limit_ana(api: Any, world: World, permissions: list[str]) -> None:
    grant = _ana_grant_id(api, world)
    r = api.patch(
        f"/patients/{world.maria}/caregivers/{grant}",
        as_="maria",
        json={"permissions": permissions},
    )
    assert r.status_code == 200, r.get_json()


def test_a_caregiver_without_view_medications_never_reads_the_medicine_on_the_lock_screen(
    api: Any, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    ana = world.users["ana"]
    ana.show_details_on_lock_screen = True
    db.session.commit()
    alert = remind("missed_dose_alert", ana, world.maria, medication_id=people["med"])
    assert rendered(engine, alert)[1] == "María has not logged a dose of Metformin 500 mg."
    _limit_ana(api, world, ["receive_missed_dose_alerts"])
    assert rendered(engine, alert)[1] == "María has not logged a scheduled dose."


def test_taking_away_view_appointments_stops_the_reminders_and_their_titles(
    api: Any, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    ana = world.users["ana"]
    ana.show_details_on_lock_screen = True
    db.session.commit()
    shown = remind("appointment", ana, world.maria, appointment_id=people["appt"])
    assert "Cardiology" in rendered(engine, shown)[1]
    # The grant changes: her pending appointment reminder is withdrawn in that transaction,
    # and were one still sent, it would not say what the visit is.
    _limit_ana(api, world, ["receive_missed_dose_alerts", "view_medications"])
    with Session(engine) as session:
        row = session.get(Reminder, shown)
        assert row is not None
        assert (row.state, row.cancelled_reason) == ("cancelled", "access_revoked")
    assert "Cardiology" not in rendered(engine, shown)[1]
    # Given back: the reminder is hers again at the next planning, title and all.
    _limit_ana(api, world, ["view_appointments"])
    assert "Cardiology" in rendered(engine, shown)[1]


def test_the_dispatcher_drops_an_appointment_reminder_to_a_caregiver_who_lost_the_permission(
    api: Any, engine: Engine, world: World, people: dict[str, Any]
) -> None:
    ana = world.users["ana"]
    register_device(db.session(), ana.id, "a", "ana-token", "ios")
    db.session.commit()
    appt = db.session.get(Appointment, people["appt"])
    assert appt is not None
    start = appt.start_at.isoformat()
    rid = remind("appointment", ana, world.maria, appointment_id=appt.id, start=start)
    # Changed behind the planner's back (as if by another process): the dispatcher asks again.
    grant = db.session.get(CaregiverGrant, _ana_grant_id(api, world))
    assert grant is not None
    grant.permissions = ["receive_missed_dose_alerts"]
    db.session.commit()
    out = io.StringIO()
    result = dispatch_once(engine, ConsoleChannel(out), "texts", START, WIRED)
    assert (result.sent, result.cancelled) == (0, 1)
    assert out.getvalue() == ""
    with Session(engine) as session:
        row = session.get(Reminder, rid)
        assert row is not None and row.cancelled_reason == "access_revoked"
