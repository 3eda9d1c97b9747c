"""The ``carecompanion`` command: a Flask CLI group with our operator commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup

from backend import db
from backend.config import EMULATOR_HOST_VAR, ConfigError, Settings
from backend.fixtures import DEFAULT_FIXTURES, load_fixtures

DEMO_EMULATOR_HOST = "127.0.0.1:9099"


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _personas(path: Path = DEFAULT_FIXTURES) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {u["persona"]: u for u in data["users"]}


def register_commands(app: Flask) -> None:
    dbgroup = AppGroup("db", help="Database schema.")

    @dbgroup.command("upgrade")
    @click.option("--revision", default="heads", show_default=True)
    def db_upgrade(revision: str) -> None:
        """Apply migrations up to REVISION."""
        from backend.migrate import upgrade

        upgrade(db.get_engine(), revision)
        click.echo(f"database at {revision} ({db.get_engine().dialect.name})")

    @dbgroup.command("revision")
    @click.option("-m", "--message", required=True)
    def db_revision(message: str) -> None:
        """Autogenerate a migration from the models (developers)."""
        from backend.migrate import revision

        revision(db.get_engine(), message)

    @dbgroup.command("load-fixtures")
    @click.option("--path", type=click.Path(exists=True, path_type=Path), default=DEFAULT_FIXTURES)
    def db_load_fixtures(path: Path) -> None:
        """Load the demo people (idempotent)."""
        load_fixtures(db.session(), path)
        db.session.commit()
        click.echo(f"fixtures loaded from {path.name}")

    app.cli.add_command(dbgroup)

    @app.cli.command("token")
    @click.option("--as", "persona", help="A demo persona (maria, ana, david, priya, omar, sam).")
    @click.option("--uid", help="Any Firebase uid instead of a persona.")
    @click.option("--hours", default=12, show_default=True, type=click.IntRange(1, 24 * 7))
    def token(persona: str | None, uid: str | None, hours: int) -> None:
        """Print a development ID token (auth-emulator mode only)."""
        from datetime import timedelta

        from backend.devtokens import emulator_token

        if bool(persona) == bool(uid):
            raise click.UsageError("give exactly one of --as or --uid")
        email = name = None
        if persona:
            people = _personas()
            if persona not in people:
                raise click.BadParameter(f"choose one of {', '.join(people)}", param_hint="--as")
            uid, email, name = (people[persona][k] for k in ("uid", "email", "name"))
        assert uid is not None
        try:
            click.echo(emulator_token(_settings(), uid, email, name, timedelta(hours=hours)))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    team = AppGroup("team", help="Organizations and care teams (operators).")

    @team.command("add")
    @click.option("--org", required=True, help="Organization name (created if new).")
    @click.option("--name", required=True, help="Team name.")
    def team_add(org: str, name: str) -> None:
        """Create a care team."""
        from backend.services.careteams import add_team

        created = add_team(db.session(), org, name)
        db.session.commit()
        click.echo(f"team {created.id}: {name} ({org})")

    @team.command("enroll")
    @click.option("--team-id", required=True, type=int)
    @click.option("--patient-id", required=True, type=int)
    def team_enroll(team_id: int, patient_id: int) -> None:
        """Enroll a patient on a care team (done by the organization, with consent on file)."""
        from backend.services.careteams import CareTeamError, enroll

        try:
            enroll(db.session(), team_id, patient_id)
        except CareTeamError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        click.echo(f"patient {patient_id} enrolled on team {team_id}")

    @team.command("crisis-guidance")
    @click.option("--org", required=True, help="Organization name.")
    @click.option("--language", help="Language of the text (en, es, …).")
    @click.option("--text", help="The guidance, with the organization's crisis numbers.")
    @click.option("--clear", is_flag=True, help="Remove the text in --language (all if none).")
    def team_crisis_guidance(org: str, language: str | None, text: str | None, clear: bool) -> None:
        """Set the crisis guidance a safety flag shows the organization's patients."""
        from backend.checkins.crisis import set_organization_guidance

        if text is not None and (clear or not language):
            raise click.UsageError("--text needs --language, and not --clear")
        try:
            texts = set_organization_guidance(db.session(), org, language, text, clear=clear)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        shown = texts or {"(default)": "US 988 text"}
        for lang, value in shown.items():
            click.echo(f"{org} [{lang}]: {value}")

    app.cli.add_command(team)

    coordinator = AppGroup("coordinator", help="Care-team members (operators only).")

    @coordinator.command("add")
    @click.option("--uid", required=True, help="The person's Firebase uid.")
    @click.option("--email", help="Their email (shown to patients).")
    @click.option("--name", required=True, help="Their name (shown to patients).")
    @click.option("--team-id", required=True, type=int)
    @click.option(
        "--role",
        default="care_coordinator",
        show_default=True,
        type=click.Choice(
            [
                "physician",
                "nurse",
                "pharmacist",
                "dietitian",
                "social_worker",
                "community_health_worker",
                "care_coordinator",
            ]
        ),
    )
    def coordinator_add(uid: str, email: str | None, name: str, team_id: int, role: str) -> None:
        """Add a care-team member; there is no self-service way to become one."""
        from backend.services.careteams import CareTeamError, add_member

        try:
            member = add_member(db.session(), team_id, uid, name, email, role)
        except CareTeamError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        click.echo(f"{name} is now {role} on team {team_id} (user {member.user_id})")

    app.cli.add_command(coordinator)

    @app.cli.command("worker")
    @click.option(
        "--channel",
        "channel_name",
        type=click.Choice(["fcm", "console"]),
        default="fcm",
        show_default=True,
        help="console prints each push as the phone would show it (development).",
    )
    @click.option("--every", default=2.0, show_default=True, type=click.FloatRange(0.2, 60))
    @click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 500))
    def worker(channel_name: str, every: float, batch_size: int) -> None:
        """Run the reminder worker: planner, dispatcher, lease reaper, device health."""
        import logging
        from datetime import timedelta

        from notifications.channels import Channel
        from notifications.dispatch import DispatchConfig
        from notifications.worker import run_worker

        logging.basicConfig(level=_settings().log_level, format="%(asctime)s %(message)s")
        channel: Channel
        if channel_name == "console":
            from notifications.channels.console import ConsoleChannel

            channel = ConsoleChannel()
        else:
            from backend.firebase import firebase_app
            from notifications.channels.fcm import FcmChannel

            channel = FcmChannel(firebase_app(_settings()))
        run_worker(
            db.get_engine(),
            channel,
            config=DispatchConfig(batch_size=batch_size),
            dispatch_every=timedelta(seconds=every),
        )
        click.echo("worker stopped")

    stats = AppGroup("stats", help="Operational numbers.")

    @stats.command("reminders")
    @click.option("--since", help="ISO date or time (UTC if no offset); default: 24 h ago.")
    @click.option("--until", help="ISO date or time (UTC if no offset); default: now.")
    def stats_reminders(since: str | None, until: str | None) -> None:
        """Lateness (p50/p95/max), states, failure and open rates of reminders due in a period."""
        from datetime import timedelta

        from backend.clock import now
        from notifications.stats import format_stats, reminder_stats

        end = _instant(until, "--until") if until else now()
        start = _instant(since, "--since") if since else end - timedelta(hours=24)
        if start >= end:
            raise click.BadParameter("must be before --until", param_hint="--since")
        click.echo(format_stats(reminder_stats(db.session(), start, end)))

    app.cli.add_command(stats)


def _instant(value: str, hint: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date or time: {value!r}", param_hint=hint) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _create_app_from_env() -> Flask:
    from backend.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    create_app=_create_app_from_env,
    add_version_option=False,
    load_dotenv=False,
    help="care-companion: API, worker and operator commands.",
)


@cli.command("demo", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the database and print, then exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Migrate a SQLite file, load the demo people, print a curl per persona, serve the API."""
    from datetime import timedelta

    from backend.app import create_app
    from backend.demo_story import tell as tell_story
    from backend.devtokens import emulator_token
    from backend.migrate import upgrade

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
    tell_story(app, settings, _personas())
    if not no_serve:
        from werkzeug.serving import run_simple

        # The worker runs here, in the demo process only (never under gunicorn): its
        # console channel prints each push as the phone would show it, beside the API log.
        stop_worker = _start_demo_worker(app)
        _demo_walkthrough(app)
        try:
            # Not app.run(): Flask ignores it under its own CLI. No reloader: one process.
            run_simple(host, port, app, use_reloader=False, threaded=True)
        finally:
            stop_worker()


DEMO_PHONES = ("maria", "ana", "david")


def _demo_walkthrough(app: Flask) -> None:
    """Compress one escalation into a minute so the console shows it at once: María's
    reminder for her next Metformin dose now, the follow-up in 30 s, Ana's missed-dose alert
    in 60 s. Real outbox rows for a real slot, under ``demo:`` keys (the planner's own rows
    for that dose keep their true times); logging the dose through the API cancels the rest.
    """
    from datetime import timedelta

    from sqlalchemy import select

    from backend.clock import now
    from backend.models import Medication, Patient, User
    from backend.services.medications import occurrences
    from notifications import enqueue

    people = _personas()
    with app.app_context():
        session = db.session()
        maria = session.scalar(select(User).where(User.firebase_uid == people["maria"]["uid"]))
        ana = session.scalar(select(User).where(User.firebase_uid == people["ana"]["uid"]))
        patient = session.scalar(
            select(Patient).where(Patient.user_id == (maria.id if maria else 0))
        )
        med = session.scalar(
            select(Medication).where(
                Medication.patient_id == (patient.id if patient else 0),
                Medication.name == "Metformin",
            )
        )
        if maria is None or ana is None or patient is None or med is None:
            return
        at = now()
        upcoming = occurrences(med, patient, at, at + timedelta(days=2))
        if not upcoming:
            return
        slot = upcoming[0]
        subject = {
            "medication_id": med.id,
            "slot_key": slot.slot_key,
            "dose_at": slot.at.isoformat(),
        }
        steps = [
            ("dose", maria.id, 0, subject),
            ("dose_followup", maria.id, 30, {**subject, "step": 1, "target": "patient"}),
            ("missed_dose_alert", ana.id, 60, {**subject, "step": 2, "target": "caregivers"}),
        ]
        for kind, user_id, after_s, subj in steps:
            due = at + timedelta(seconds=after_s)
            enqueue(
                session,
                dedupe_key=f"demo:{kind}:{med.id}:{slot.slot_key}:{at:%Y%m%dT%H%M}",
                kind=kind,
                user_id=user_id,
                patient_id=patient.id,
                due_at=due,
                not_after=due + timedelta(minutes=10),
                subject=subj,
            )
        session.commit()
    click.echo(
        "Demo walkthrough: María's reminder for her next Metformin dose now, the follow-up in "
        "30 s and Ana's missed-dose alert in 60 s (compressed from 30 and 60 minutes).\n"
    )


def _start_demo_worker(app: Flask) -> Callable[[], None]:
    """Give the demo people a console "phone" each and run the worker in a thread.

    Returns the function that stops it (the batch in hand is finished first).
    """
    import logging
    import threading
    from datetime import timedelta

    from sqlalchemy import select

    from backend.models import User
    from notifications.channels.console import ConsoleChannel
    from notifications.devices import register_device
    from notifications.dispatch import set_renderer
    from notifications.relevance import unregister as unregister_relevance_checks
    from notifications.texts import render
    from notifications.worker import build_scheduler

    people = _personas()
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
    set_renderer(render)
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
        set_renderer(None)
        unregister_relevance_checks()  # build_scheduler installed them process-wide

    return stop_worker


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


@cli.command("serve", with_appcontext=False)
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(bind: str, workers: int) -> None:
    """Serve the API with gunicorn (production; run the worker as its own process)."""
    from gunicorn.app.base import BaseApplication

    from backend.app import create_app

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self) -> Flask:
            return create_app()

    try:
        Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    _Server().run()


def main() -> None:
    cli.main(prog_name="carecompanion")
