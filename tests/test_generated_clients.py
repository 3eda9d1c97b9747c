"""What a mobile team gets: clients generated from the committed api_spec/openapi.json.

- Python: openapi-python-client (pinned in the dev extra) generates a client with no warning,
  every generated module imports, and the journey of issue 12 runs through it -- and only
  through it -- against the app served over real HTTP on 127.0.0.1 (SQLite, or PostgreSQL
  with TEST_DATABASE_URL), signed in with dev tokens.
- TypeScript: openapi-typescript (clients/ts, installed by ``npm ci``) generates the types and
  ``tsc --noEmit --strict`` checks a typed journey (clients/ts/journey.ts) against them.

Both skip, saying why, where the generator is not installed; .ci/run installs both.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import Api, Clock, World

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "api_spec" / "openapi.json"
TS = ROOT / "clients" / "ts"
PACKAGE = "cc_client"


# --- Python ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    generator = shutil.which("openapi-python-client") or (
        str(Path(sys.executable).parent / "openapi-python-client")
    )
    if not Path(generator).exists():
        pytest.skip("openapi-python-client is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")  # no formatter run: just the code
    result = subprocess.run(
        [
            *(generator, "generate", "--path", str(SPEC), "--meta", "none"),
            *("--output-path", str(out / PACKAGE), "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_generated_module_imports(generated: ModuleType) -> None:
    names = [m.name for m in pkgutil.walk_packages(generated.__path__, f"{PACKAGE}.")]
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure is the finding
            failed[name] = repr(exc)
    assert not failed
    assert len([n for n in names if ".api." in n]) >= 80  # one module per operation


@pytest.fixture
def server(ctx: Flask) -> Iterator[str]:
    """The app on a real socket, for the length of one test."""
    http = make_server("127.0.0.1", 0, ctx, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=10)


def _module(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_issue_12_journey_runs_through_the_generated_python_client(
    generated: ModuleType, server: str, api: Api, world: World, clock: Clock
) -> None:
    c = _module(generated, "client")
    m = _module(generated, "models")
    op = {
        name: _module(generated, f"api.{tag}.{name}")
        for tag, names in {
            "me": ["get_me", "patch_me"],
            "devices": ["put_device_by_installation", "get_devices"],
            "medications": ["post_medications", "get_medication_schedule", "get_medications"],
            "doses": ["post_doses"],
            "today": ["get_today"],
            "appointments": ["post_appointments"],
            "access_log": ["get_access_log"],
            "invitations": ["post_invitations", "post_redeem"],
            "caregivers": ["delete_caregiver_by_id"],
            "checkins": ["get_checkin_template_one", "post_checkin_responses"],
            "worklist": [
                *("get_worklist", "post_work_item_acknowledge"),
                *("post_assign", "post_resolve"),
            ],
        }.items()
        for name in names
    }

    def signed_in(who: str) -> Any:
        return c.AuthenticatedClient(
            base_url=server, token=api.token(who), raise_on_unexpected_status=True
        )

    maria, lucia, priya = signed_in("maria"), signed_in("lucia"), signed_in("priya")
    pid = world.maria

    # María reads her profile and updates it by sending back what she read.
    me = op["get_me"].sync(client=maria)
    assert isinstance(me, m.Me) and me.patient_id == pid
    update = m.MeUpdate.from_dict(me.to_dict())
    update.wake_time = "06:45"
    updated = op["patch_me"].sync(client=maria, body=update)
    assert isinstance(updated, m.Me) and updated.wake_time == "06:45"
    assert updated.language == me.language

    # She registers her phone.
    device = op["put_device_by_installation"].sync(
        "maria-phone-1",
        client=maria,
        body=m.DeviceInput(
            fcm_token="fcm-token-for-maria-phone-0001",
            notifications_enabled=True,
            platform=m.Platform.ANDROID,
        ),
    )
    assert isinstance(device, m.Device) and device.active
    assert [d.installation_id for d in op["get_devices"].sync(client=maria)] == ["maria-phone-1"]

    # A medicine with breakfast and dinner doses (FHIR Timing `when`), and its schedule.
    timing = m.Timing(
        repeat=m.TimingRepeat(
            frequency=2,
            period=1.0,
            period_unit=m.TimingUnit.D,
            when=[m.EventTiming.CM, m.EventTiming.CV],
        )
    )
    med = op["post_medications"].sync(
        pid, client=maria, body=m.MedicationInput(name="Metformin 500 mg", timing=timing)
    )
    assert isinstance(med, m.Medication) and med.timing is not None
    assert med.timing.repeat.when == [m.EventTiming.CM, m.EventTiming.CV]
    schedule = op["get_medication_schedule"].sync(pid, med.id, client=maria)
    assert schedule and all(isinstance(o, m.Occurrence) for o in schedule)

    # She reads today, and logs the next dose twice with one client id: one record.
    today = op["get_today"].sync(client=maria)
    (day,) = [d for d in today.patients if d.patient_id == pid]
    dose_slot = next(d for d in day.doses if d.medication_id == med.id)
    clock.at = dose_slot.at + timedelta(minutes=10)  # dinner time: she takes it
    report = m.DoseInput(
        client_id="maria-phone-1:dose:1",
        medication_id=med.id,
        status=m.DoseReport.TAKEN,
        taken_at=clock(),
        slot_key=dose_slot.slot_key,
    )
    first = op["post_doses"].sync_detailed(pid, client=maria, body=report)
    again = op["post_doses"].sync_detailed(pid, client=maria, body=report)
    assert first.status_code == 201 and again.status_code == 200
    assert again.parsed.id == first.parsed.id
    assert op["get_today"].sync(client=maria).patients[0].doses is not None

    # She books an appointment.
    start = clock() + timedelta(days=3)
    visit = op["post_appointments"].sync(
        pid,
        client=maria,
        body=m.AppointmentInput(
            title="Diabetes check",
            type_=m.AppointmentType.IN_PERSON,
            location="Riverside clinic, room 4",
            start=start,
            end=start + timedelta(minutes=30),
        ),
    )
    assert isinstance(visit, m.Appointment) and visit.status == m.AppointmentStatus.BOOKED

    # She invites Lucía, who redeems the code, sees María's day and logs a dose for her.
    invitation = op["post_invitations"].sync(
        pid,
        client=maria,
        body=m.InvitationCreate(
            relationship=m.Relationship.FRIEND,
            permissions=[m.Permission.VIEW_MEDICATIONS, m.Permission.LOG_DOSES],
            invitee_name="Lucía",
        ),
    )
    assert isinstance(invitation, m.CreatedInvitation)
    redeemed = op["post_redeem"].sync(client=lucia, body=m.Redeem(code=invitation.code))
    assert isinstance(redeemed, m.Redeemed) and redeemed.patient_id == pid
    seen = op["get_today"].sync(client=lucia)
    assert pid in [d.patient_id for d in seen.patients]
    breakfast = next(o for o in schedule if o.at > dose_slot.at)  # the next morning
    clock.at = breakfast.at + timedelta(minutes=5)
    maria, lucia, priya = signed_in("maria"), signed_in("lucia"), signed_in("priya")  # new day
    for_her = op["post_doses"].sync(
        pid,
        client=lucia,
        body=m.DoseInput(
            client_id="lucia-phone:dose:1",
            medication_id=med.id,
            status=m.DoseReport.TAKEN,
            taken_at=clock(),
            slot_key=breakfast.slot_key,
        ),
    )
    assert isinstance(for_her, m.Dose) and for_her.on_behalf

    # María reads her access log page by page (Link / X-Total-Count), and revokes Lucía.
    seen_entries: list[Any] = []
    page = 1
    while True:
        answer = op["get_access_log"].sync_detailed(pid, client=maria, page=page, page_size=1)
        seen_entries += answer.parsed
        total = int(answer.headers["X-Total-Count"])
        if 'rel="next"' not in answer.headers.get("Link", ""):
            break
        page += 1
    assert total == len(seen_entries) >= 2 and page >= 2
    assert {e.actor_name for e in seen_entries} == {"Lucia"}  # as her sign-in names her
    gone = op["delete_caregiver_by_id"].sync_detailed(pid, redeemed.grant_id, client=maria)
    assert gone.status_code == 204
    lucia.raise_on_unexpected_status = False
    refused = op["get_medications"].sync_detailed(pid, client=lucia)
    assert refused.status_code == 404 and isinstance(refused.parsed, m.Error)

    # María answers the PHQ-9; an answer of self-harm thoughts opens a safety item.
    phq9 = op["get_checkin_template_one"].sync("PHQ-9", client=maria)
    assert isinstance(phq9, m.Template) and len(phq9.items) == 9
    answers = m.CheckinAnswersAnswers.from_dict(
        {item.code: (1 if item.code == "44260-8" else 0) for item in phq9.items if item.answers}
    )
    response = op["post_checkin_responses"].sync(
        pid, client=maria, body=m.CheckinAnswers(template="PHQ-9", answers=answers)
    )
    assert isinstance(response, m.CheckinResponse) and response.raised

    # Priya pages her worklist, then acknowledges, assigns and resolves the safety item.
    items: list[Any] = []
    page = 1
    while True:
        answer = op["get_worklist"].sync_detailed(client=priya, page=page, page_size=1)
        items += answer.parsed
        if 'rel="next"' not in answer.headers.get("Link", ""):
            break
        page += 1
    (safety,) = [i for i in items if i.kind == m.WorkItemKind.SAFETY]
    assert safety.patient.id == pid and safety.status == m.WorkItemStatus.OPEN
    acknowledged = op["post_work_item_acknowledge"].sync(safety.id, client=priya)
    assert acknowledged.status == m.WorkItemStatus.ACKNOWLEDGED
    priya_id = op["get_me"].sync(client=priya).id
    assigned = op["post_assign"].sync(safety.id, client=priya, body=m.Assign(user_id=priya_id))
    assert assigned.assigned_to.id == priya_id
    resolved = op["post_resolve"].sync(
        safety.id, client=priya, body=m.Resolve(note="Called María; safety plan agreed.")
    )
    assert resolved.status == m.WorkItemStatus.RESOLVED
    assert [e.action for e in resolved.events][-1] == m.WorkItemAction.RESOLVED


# --- TypeScript ------------------------------------------------------------------------------


def test_the_typed_journey_compiles_against_the_generated_typescript_types() -> None:
    if shutil.which("npx") is None:
        pytest.skip("node and npm are not installed")
    if not (TS / "node_modules" / ".bin" / "openapi-typescript").exists():
        pytest.skip("run `npm ci` in clients/ts (.ci/run does)")
    generate = subprocess.run(
        [
            "npx",
            "--no-install",
            "openapi-typescript",
            str(SPEC),
            "--output",
            "generated/schema.d.ts",
        ],
        cwd=TS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    assert "warn" not in (generate.stdout + generate.stderr).lower(), generate.stderr
    check = subprocess.run(
        ["npx", "--no-install", "tsc", "--noEmit", "--strict", "--project", "."],
        cwd=TS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
