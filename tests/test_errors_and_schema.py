"""One error shape for everything; the migrations match the models; the demo command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.engine import Engine

from backend.app import create_app
from backend.migrate import MIGRATIONS, drift
from tests.conftest import Api, World, assert_error, make_settings


def test_unknown_routes_and_methods_answer_in_json(api: Api) -> None:
    assert_error(api.get("/nowhere", as_="maria"), 404)
    assert_error(api.get("/nowhere"), 404)
    assert_error(api.request("PUT", "/me", as_="maria", json={}), 405)


def test_malformed_bodies_are_a_clean_4xx(api: Api, world: World) -> None:
    path = f"/patients/{world.maria}"
    bad_json = api.patch(
        path, as_="maria", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= bad_json.status_code < 500
    assert_error(bad_json, bad_json.status_code)
    assert_error(api.patch(path, as_="maria", json=["a", "list"]), 422)
    big = api.patch(
        path,
        as_="maria",
        data="x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert_error(big, 413)


def test_ids_that_are_not_numbers_are_not_found(api: Api) -> None:
    assert_error(api.get("/patients/abc", as_="maria"), 404)
    assert_error(api.get("/patients/-1", as_="maria"), 404)
    assert_error(api.get("/patients/99999999999999999999", as_="maria"), 404)


def test_an_unexpected_error_is_a_500_in_our_shape_with_the_request_id_logged(
    engine: Engine, ctx: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(), ENGINE=engine)

    def boom() -> str:
        raise RuntimeError("kaboom")

    app.add_url_rule("/boom", "boom", boom)
    from backend.auth import PUBLIC_ENDPOINTS

    PUBLIC_ENDPOINTS.add("boom")
    try:
        with caplog.at_level(logging.ERROR):
            r = app.test_client().get("/boom", headers={"X-Request-ID": "req-boom-42"})
    finally:
        PUBLIC_ENDPOINTS.discard("boom")
    body = assert_error(r, 500)
    assert "kaboom" not in r.get_data(as_text=True)
    assert body["request_id"] == "req-boom-42"
    assert any("req-boom-42" in rec.getMessage() for rec in caplog.records)


def test_the_migrations_match_the_models(engine: Engine) -> None:
    assert drift(engine) == []


def test_the_migrations_form_one_chain() -> None:
    # Two branches that each add a migration on the same parent make two heads; `db upgrade`
    # would still apply both, but the order between them would be undefined.
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert len(heads) == 1, f"more than one migration head: {heads}"


def test_the_demo_prepares_everything_and_prints_a_curl_per_persona(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    env.update(CARECOMPANION_INSTANCE_PATH=str(tmp_path), CARECOMPANION_ENV="development")
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-c", "from backend.cli import main; main()", "demo", "--no-serve"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    curls = [line for line in first.stdout.splitlines() if line.startswith("curl ")]
    [feed] = [c for c in curls if "/calendar/" in c]  # María's feed: its URL is the secret
    assert feed.endswith(".ics") and "Authorization" not in feed
    curls.remove(feed)
    [export] = [c for c in curls if "/fhir/Patient/" in c]  # Ana's FHIR export of María
    assert export.endswith("/$everything'") and "Authorization: Bearer " in export
    curls.remove(export)
    assert len(curls) == 6
    assert all("Authorization: Bearer " in c and "http://127.0.0.1:8000/" in c for c in curls)
    # Priya's morning, told through the API: María's missed doses and worrying PHQ-9,
    # Mr. Chen's discharge checklist, the thread with Ana
    story = first.stdout[first.stdout.index("Priya's worklist") :]
    assert "María García: 3 missed doses in the last 7 days (missed_doses)" in story
    assert "PHQ-9" in story
    assert "discharge checklist" in story
    assert "Ana García: Mom has been forgetting her evening Metformin." in story
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # loading twice adds nothing and fails nothing
    assert again.stdout[again.stdout.index("Priya's worklist") :] == story
    assert (tmp_path / "carecompanion.sqlite").exists()
    prod = subprocess.run(
        cmd,
        env={**env, "CARECOMPANION_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert prod.returncode != 0


def test_a_nul_character_anywhere_in_a_body_is_refused(api: Api, world: World) -> None:
    r = api.patch(
        f"/patients/{world.maria}", as_="maria", json={"communication_needs": "bad\u0000text"}
    )
    assert_error(r, 422)
    assert api.get(f"/patients/{world.maria}", as_="maria").get_json()["communication_needs"] != (
        "bad\u0000text"
    )
