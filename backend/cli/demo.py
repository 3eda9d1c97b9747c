"""``carecompanion demo``: a SQLite demo with the demo people, their story and a console worker."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from flask import Flask
from sqlalchemy import select
from werkzeug import serving

from backend import db
from backend.app import create_app
from backend.cli.common import personas
from backend.clock import now
from backend.config import EMULATOR_HOST_VAR, ConfigError, Settings
from backend.demo_story import tell as tell_story
from backend.devtokens import emulator_token
from backend.fixtures import load_fixtures
from backend.migrate import upgrade
from backend.models import Medication, Patient, User
from backend.schedule.medicines import occurrences
from backend.services import calendar_feeds
from notifications import enqueue
from notifications.channels.console import ConsoleChannel
from notifications.devices import register_device
from notifications.worker import build_scheduler

DEMO_EMULATOR_HOST = "127.0.0.1:9099"
DEMO_PHONES = ("maria", "ana", "david")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the database and print, then exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate a SQLite file, load the demo people, print a curl per persona, serve the API."""
    os.environ.setdefault("CARECOMPANION_ENV", "development")
    os.environ.setdefault(EMULATOR_HOST_VAR, DEMO_EMULATOR_HOST)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.is_production:
        raise click.ClickException("the demo never runs with CARECOMPANION_ENV=production")
    app = create_app(settings)
    with app.app_context():
        # One line per migration (about forty, some of several lines) would bury the
        # tokens and the story printed below; `carecompanion db upgrade` shows them.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        upgrade(db.get_engine())
        loaded = load_fixtures(db.session())
        db.session.commit()
        base = f"http://{host}:{port}"
        click.echo(f"care-companion demo: {db.get_engine().url.render_as_string()}")
        click.echo(f"API on {base} (spec: {base}/openapi.json); Ctrl-C stops it.\n")
        for persona, user in loaded["users"].items():
            tok = emulator_token(
                settings, user.firebase_uid, user.email, user.display_name, timedelta(hours=12)
            )
            path = _demo_path(persona, loaded)
            click.echo(f"# {persona} ({user.display_name})")
            click.echo(f"curl -s -H 'Authorization: Bearer {tok}' {base}{path}\n")
        click.echo("# María's private calendar feed (subscribe to it in a calendar app; no token)")
        click.echo(f"curl -s {base}{_feed_path(loaded['users']['maria'])}\n")
        ana = loaded["users"]["ana"]
        ana_token = emulator_token(
            settings, ana.firebase_uid, ana.email, ana.display_name, timedelta(hours=12)
        )
        click.echo("# María's record as a FHIR R4 Bundle, as Ana may see it (her grant's parts)")
        click.echo(
            f"curl -s -H 'Authorization: Bearer {ana_token}' "
            f"'{base}/fhir/Patient/{loaded['patients']['maria'].id}/$everything'\n"
        )
    # The story's hundreds of requests would bury it under their log lines; the API's own
    # line per request comes back for the requests you make once it serves.
    requests_log = logging.getLogger("carecompanion.requests")
    requests_log.setLevel(logging.WARNING)
    tell_story(app, settings, personas())
    click.echo(
        f"\nThe care team's console: {base}/console/ (sign in as priya, the nurse; omar, on "
        "another team, sees none of her patients; any other persona sees nothing).\n"
    )
    if not no_serve:
        # The worker runs here, in the demo process only (never under gunicorn): its
        # console channel prints each push as the phone would show it, beside the API log.
        stop_worker = _start_demo_worker(app)
        _demo_walkthrough(app)
        requests_log.setLevel(logging.NOTSET)
        # Our line per request (with its request id) replaces the dev server's own.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        try:
            # Not app.run(): Flask ignores it under its own CLI. No reloader: one process.
            serving.run_simple(host, port, app, use_reloader=False, threaded=True)
        finally:
            stop_worker()


def _demo_walkthrough(app: Flask) -> None:
    """Compress two escalations into a minute so the console shows them at once: María's
    reminder for her next Metformin dose now, the follow-up in 30 s, Ana's missed-dose alert
    in 60 s; and David's "It's time for Wei's medicine." for Wei's next Donepezil dose now,
    his follow-up in 30 s (David gives his father's doses). Real outbox rows for real
    slots, under ``demo:`` keys (the planner's own rows for those doses keep their true
    times); logging a dose through the API cancels the rest of it.
    """
    people = personas()
    with app.app_context():
        session = db.session()
        users = {
            who: session.scalar(select(User).where(User.firebase_uid == people[who]["uid"]))
            for who in ("maria", "ana", "david")
        }
        maria, ana, david = users["maria"], users["ana"], users["david"]
        if maria is None or ana is None or david is None:
            return
        patient = session.scalar(select(Patient).where(Patient.user_id == maria.id))
        wei = session.scalar(select(Patient).where(Patient.display_name == "Wei Chen"))
        told = []
        if patient is not None and _queue(
            session,
            patient,
            "Metformin",
            [
                ("dose", maria.id, 0, None),
                ("dose_followup", maria.id, 30, (1, "patient")),
                ("missed_dose_alert", ana.id, 60, (2, "caregivers")),
            ],
        ):
            told.append(
                "María's reminder for her next Metformin dose now, the follow-up in 30 s and "
                "Ana's missed-dose alert in 60 s (compressed from 30 and 60 minutes)"
            )
        if wei is not None and _queue(
            session,
            wei,
            "Donepezil",
            [("dose", david.id, 0, None), ("dose_followup", david.id, 30, (1, "patient"))],
        ):
            told.append(
                "David's \"It's time for Wei's medicine.\" now (he gives his father's doses) "
                "and his follow-up in 30 s"
            )
        session.commit()
    if told:
        click.echo("Demo walkthrough: " + "; ".join(told) + ".\n")


def _queue(
    session: Any,
    patient: Patient,
    medicine: str,
    steps: list[tuple[str, int, int, tuple[int, str] | None]],
) -> bool:
    """Queue ``steps`` (kind, recipient, seconds from now, (step, target)) for the next dose
    of the patient's ``medicine``; False when there is none."""
    med = session.scalar(
        select(Medication).where(Medication.patient_id == patient.id, Medication.name == medicine)
    )
    if med is None:
        return False
    at = now()
    upcoming = occurrences(med, patient, at, at + timedelta(days=2))
    if not upcoming:
        return False
    slot = upcoming[0]
    subject = {"medication_id": med.id, "slot_key": slot.slot_key, "dose_at": slot.at.isoformat()}
    for kind, user_id, after_s, step in steps:
        due = at + timedelta(seconds=after_s)
        extra = {} if step is None else {"step": step[0], "target": step[1]}
        enqueue(
            session,
            dedupe_key=f"demo:{kind}:{med.id}:{slot.slot_key}:{user_id}:{at:%Y%m%dT%H%M}",
            kind=kind,
            user_id=user_id,
            patient_id=patient.id,
            due_at=due,
            not_after=due + timedelta(minutes=10),
            subject={**subject, **extra},
        )
    return True


def _start_demo_worker(app: Flask) -> Callable[[], None]:
    """Give the demo people a console "phone" each and run the worker in a thread.

    Returns the function that stops it (the batch in hand is finished first).
    """
    people = personas()
    with app.app_context():
        session = db.session()
        legend = []
        for persona in DEMO_PHONES:
            user = session.scalar(select(User).where(User.firebase_uid == people[persona]["uid"]))
            if user is None:
                continue
            device, _ = register_device(
                session, user.id, f"demo-console-{persona}", f"demo-console-{persona}", "android"
            )
            legend.append(f"device {device.id} = {user.name}'s phone")
        session.commit()
        engine = db.get_engine()
    click.echo("Reminders print below as each phone would show them: " + ", ".join(legend) + ".\n")

    # The pushes, not the scheduler's every-second chatter.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    scheduler = build_scheduler(
        engine, ConsoleChannel(), stop=stop, dispatch_every=timedelta(seconds=1)
    )

    def run() -> None:
        with app.app_context():
            if not stop.is_set():
                scheduler.start()

    thread = threading.Thread(target=run, name="demo-worker", daemon=True)
    thread.start()

    def stop_worker() -> None:
        stop.set()
        while thread.is_alive():  # also when it had not quite started yet
            if scheduler.running:
                scheduler.shutdown(wait=True)
            thread.join(timeout=0.05)

    return stop_worker


def _feed_path(maria: User) -> str:
    """María's feed URL: made on the first run, rotated on later ones (only its hash is
    stored, so an earlier run's URL cannot be shown again; the old one stops working)."""
    session = db.session()
    feed = calendar_feeds.of_user(session, maria)
    if feed is None:
        secret = calendar_feeds.create(session, maria, {})[1]
    else:
        secret = calendar_feeds.rotate(session, feed)
    session.commit()
    return f"/calendar/{secret}.ics"


def _demo_path(persona: str, loaded: dict[str, Any]) -> str:
    patients = loaded["patients"]
    return {
        "maria": "/me/patient",
        "ana": f"/patients/{patients['maria'].id}",
        "david": f"/patients/{patients['chen'].id}",
        "priya": f"/care-teams/{loaded['teams']['Riverside Primary Care A'].id}/patients",
        "omar": "/care-teams",
        "sam": "/patients",
    }.get(persona, "/me")
