"""The coordinator's morning, told through the API for ``carecompanion demo``.

Everything here goes through the real routes (Flask's test client with emulator tokens), so
the demo exercises the same validation, access policy and audit as a phone would:

* María logs her doses for the last 30 days, except three this week (Metformin twice, her
  insulin once), and answers a PHQ-9 that lands in the moderately severe band;
* Priya records Mr. Chen's discharge from hospital two days ago, with his medicine changes;
* Ana writes to the care team about her mother, and Priya answers;
* the worklist sweep runs, and Priya's worklist, Mr. Chen's discharge checklist and the
  thread are printed.

Each step is skipped when its result is already there, so running the demo twice tells the
same story once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend import db
from backend.clock import now
from backend.config import Settings
from backend.devtokens import emulator_token
from backend.models import Medication, Patient, User
from backend.schedule.medicines import occurrences
from backend.services.sweep import enrolled_patient_ids, sweep

HISTORY_DAYS = 90  # the panel shows 7-, 30- and 90-day adherence: cover all three
# (medication name, local days ago, slot-key suffix) of the doses María did not log this
# week: two evening Metformin doses (with dinner, "CV") and one bedtime insulin.
MISSED = {("Metformin", 2, "#CV"), ("Metformin", 4, "#CV"), ("Insulin glargine", 3, "")}
# A PHQ-9 in the moderately severe band (16), item 9 ("better off dead") answered 0.
PHQ9 = {
    "44250-9": 2,
    "44255-8": 2,
    "44259-0": 3,
    "44254-1": 2,
    "44251-7": 2,
    "44258-2": 2,
    "44252-5": 2,
    "44253-3": 1,
    "44260-8": 0,
}

Call = Callable[..., Any]


class _Client:
    """The test client, signed in as one person at a time; a failed call stops the demo."""

    def __init__(self, app: Flask, settings: Settings, users: dict[str, User]) -> None:
        self.client: FlaskClient = app.test_client()
        self.settings = settings
        self.users = users

    def call(self, method: str, path: str, who: str, **kw: Any) -> Any:
        user = self.users[who]
        token = emulator_token(
            self.settings, user.firebase_uid, user.email, user.display_name, timedelta(hours=1)
        )
        response = self.client.open(
            path, method=method, headers={"Authorization": f"Bearer {token}"}, **kw
        )
        if response.status_code >= 400:
            raise click.ClickException(
                f"demo story: {method} {path} as {who} -> {response.status_code} "
                f"{response.get_data(as_text=True)[:300]}"
            )
        return response.get_json()


def _log_history(api: _Client, patient: Patient, who: str) -> int:
    """Log the last HISTORY_DAYS days of scheduled doses as taken, a little late, but MISSED."""

    at = now()
    today = at.astimezone(ZoneInfo(patient.time_zone)).date()
    meds = db.session.scalars(
        select(Medication).where(
            Medication.patient_id == patient.id,
            Medication.status == "active",
            Medication.as_needed.is_(False),
        )
    ).all()
    logged = 0
    for med in meds:
        for slot in occurrences(med, patient, at - timedelta(days=HISTORY_DAYS), at):
            days_ago = (today - slot.local_date).days
            skipped = any(
                (name, ago) == (med.name, days_ago) and slot.slot_key.endswith(suffix)
                for name, ago, suffix in MISSED
            )
            if skipped or slot.at > at - timedelta(hours=1):
                continue
            body = {
                "medication_id": med.id,
                "client_id": re.sub(r"[^A-Za-z0-9._:-]", "-", f"demo-{med.id}-{slot.slot_key}")[
                    :100
                ],
                "status": "taken",
                "taken_at": (slot.at + timedelta(minutes=7)).isoformat(),
                "slot_key": slot.slot_key,
            }
            api.call("POST", f"/patients/{patient.id}/doses", who, json=body)
            logged += 1
    return logged


def tell(app: Flask, settings: Settings, personas: dict[str, dict[str, Any]]) -> None:
    """Run the story (idempotently) and print what Priya sees."""

    with app.app_context():
        session = db.session()
        users = {
            p: u
            for p, u in (
                (p, session.scalar(select(User).where(User.firebase_uid == d["uid"])))
                for p, d in personas.items()
            )
            if u is not None
        }
        maria = session.scalar(select(Patient).where(Patient.user_id == users["maria"].id))
        chen = session.scalar(select(Patient).where(Patient.display_name.like("%Chen%")))
        if maria is None or chen is None:
            return
        api = _Client(app, settings, users)

        if not api.call("GET", f"/patients/{maria.id}/checkin-responses", "maria"):
            _log_history(api, maria, "maria")
            _log_history(api, chen, "david")
            api.call(
                "POST",
                f"/patients/{maria.id}/checkin-responses",
                "maria",
                json={"template": "PHQ-9", "answers": PHQ9},
            )
        if not api.call("GET", f"/patients/{maria.id}/threads", "ana"):
            thread = api.call(
                "POST",
                f"/patients/{maria.id}/threads",
                "ana",
                json={
                    "subject": "Mamá's evening doses",
                    "body": "Mom has been forgetting her evening Metformin. Can someone call her?",
                },
            )
            api.call(
                "POST",
                f"/patients/{maria.id}/threads/{thread['id']}/messages",
                "priya",
                json={"body": "Thank you, Ana. I will call her this afternoon."},
            )
        if any(r.rule.endswith("/discharges") for r in app.url_map.iter_rules()):
            _record_discharge(api, chen)

        sweep(session, now(), enrolled_patient_ids(session))
        session.commit()
        _print_morning(api, maria, chen)


def _record_discharge(api: _Client, chen: Patient) -> None:
    """Mr. Chen came home from hospital two days ago (care transitions)."""
    if api.call("GET", f"/patients/{chen.id}/discharges", "priya"):
        return
    stopped = db.session.scalar(
        select(Medication).where(Medication.patient_id == chen.id, Medication.name == "Amlodipine")
    )
    changes: list[dict[str, Any]] = [
        {
            "change": "new",
            "name": "Furosemide",
            "details": "One tablet every morning for fluid; weigh yourself daily.",
            "medication": {
                "strength": "20 mg",
                "timing": {
                    "repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["CM"]}
                },
                "reason": "Fluid after heart failure",
            },
        }
    ]
    if stopped is not None:
        changes.append(
            {
                "change": "stopped",
                "name": "Amlodipine",
                "medication_id": stopped.id,
                "details": "Stopped in hospital: blood pressure low.",
            }
        )
    api.call(
        "POST",
        f"/patients/{chen.id}/discharges",
        "priya",
        json={
            "facility": "Riverside General Hospital",
            "discharged_at": (now() - timedelta(days=2)).isoformat(),
            "admitted_at": (now() - timedelta(days=6)).isoformat(),
            "reason": "Heart failure exacerbation",
            "medication_changes": changes,
        },
    )


def _print_morning(api: _Client, maria: Patient, chen: Patient) -> None:
    echo = click.echo
    echo("Priya's worklist (GET /worklist), urgent first, then oldest:")
    for item in api.call("GET", "/worklist", "priya"):
        flag = "URGENT " if item["urgent"] else ""
        echo(f"  [{item['id']}] {flag}{item['patient']['name']}: {item['title']} ({item['kind']})")
    has = any(r.rule.endswith("/discharges") for r in api.client.application.url_map.iter_rules())
    discharges = api.call("GET", f"/patients/{chen.id}/discharges", "priya") if has else []
    if discharges:
        latest = api.call("GET", f"/patients/{chen.id}/discharges/{discharges[0]['id']}", "priya")
        echo(f"\n{chen.display_name}'s discharge checklist ({latest['facility']}):")
        for task in latest.get("tasks", []):
            due = datetime.fromisoformat(task["due_at"]).strftime("%d %b %H:%M UTC")
            echo(f"  - {task['kind'].replace('_', ' ')}: {task['status']} (due {due})")
    echo("\nMessages with the care team about María (GET /patients/{id}/threads):")
    for thread in api.call("GET", f"/patients/{maria.id}/threads", "priya"):
        echo(f"  thread {thread['id']}: {thread['subject']}")
        messages = api.call("GET", f"/patients/{maria.id}/threads/{thread['id']}/messages", "priya")
        for message in reversed(messages):  # newest first from the API
            echo(f"    {message.get('author_name') or 'someone'}: {message['body']}")
    echo("")
