"""The console's pages as HTTP: served under /console with a strict CSP, sign-in by persona
only in the auth-emulator mode outside production, and nothing but static files."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from backend.app import create_app
from backend.cli import cli
from backend.config import ConfigError
from backend.console import CONTENT_SECURITY_POLICY
from tests.conftest import Api, assert_error, make_settings


def _csp(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


def test_every_console_address_is_the_one_page_with_a_strict_policy(api: Api) -> None:
    for path in ("/console/", "/console/worklist", "/console/patients/987654"):
        response = api.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert '<script type="module" src="/console/static/app.js"></script>' in page
        assert "<style" not in page and " style=" not in page and "onclick" not in page.lower()
        directives = _csp(response)
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"


def test_the_scripts_are_our_own_files_with_the_same_policy(api: Api) -> None:
    response = api.get("/console/static/app.js")
    assert response.status_code == 200
    assert "javascript" in response.mimetype
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    source = response.get_data(as_text=True)
    assert "innerHTML" not in source and "http://" not in source and "https://" not in source


def test_no_static_file_is_a_json_404(api: Api) -> None:
    assert_error(api.get("/console/static/nothing.js"), 404)


def test_development_sign_in_makes_a_token_the_api_accepts(api: Api) -> None:
    config = api.get("/console/config.json").get_json()
    assert config["sign_in"] == "personas"
    assert {"persona": "priya", "name": "Priya Natarajan"} in config["personas"]
    answer = api.post("/console/dev/token", json={"persona": "priya"})
    assert answer.status_code == 200
    token = answer.get_json()["token"]
    me = api.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json()["display_name"] == "Priya Natarajan"


def test_a_token_for_someone_who_is_not_a_persona_is_refused(api: Api) -> None:
    body = assert_error(api.post("/console/dev/token", json={"persona": "nobody"}), 422)
    assert "priya" in body["errors"]["json"]["persona"][0]
    assert_error(api.post("/console/dev/token", json={"persona": "priya", "uid": "x"}), 422)
    assert_error(api.post("/console/dev/token", data="persona=priya"), 415)


def test_without_the_emulator_there_is_no_sign_in_picker_nor_token(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A development server without the emulator switch: the API verifies real tokens, so the
    # console offers no picker and makes no token; the page says sign-in is not configured.
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")  # the test app's; restored afterwards
    settings = make_settings(firebase_auth_emulator_host=None, env="development")
    app: Flask = create_app(settings, ENGINE=engine, TESTING=True)
    client = app.test_client()
    config = client.get("/console/config.json").get_json()
    assert config["sign_in"] == "unconfigured"
    assert "personas" not in config
    assert_error(client.post("/console/dev/token", json={"persona": "priya"}), 404)
    assert client.get("/console/").status_code == 200


def test_the_worklist_kinds_come_from_the_api(api: Api) -> None:
    config = api.get("/console/config.json").get_json()
    spec = api.get("/openapi.json").get_json()
    assert config["work_item_kinds"] == spec["components"]["schemas"]["WorkItemKind"]["enum"]
    assert "KINDS" not in api.get("/console/static/worklist.js").get_data(as_text=True)


def _firebase_app(engine: Any, monkeypatch: pytest.MonkeyPatch, **flask_config: Any) -> Flask:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")  # the test app's; restored afterwards
    settings = make_settings(
        firebase_auth_emulator_host=None,
        env="development",
        firebase_web_api_key="AIzaSyTEST-console-key-0000000000000000",
        firebase_auth_domain="sign-in.example.org",
    )
    return create_app(settings, ENGINE=engine, TESTING=True, **flask_config)


def test_firebase_sign_in_may_call_googles_sign_in_hosts_and_nothing_else(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _firebase_app(engine, monkeypatch).test_client()
    config = client.get("/console/config.json").get_json()
    assert config["sign_in"] == "firebase"
    assert config["firebase"]["authDomain"] == "sign-in.example.org"
    assert config["providers"] == [{"id": "password", "name": "Email and password"}]
    assert config["emulator"] is None
    assert config["build_command"] == "carecompanion console build"
    directives = _csp(client.get("/console/"))
    assert directives["connect-src"] == (
        "'self' https://identitytoolkit.googleapis.com https://securetoken.googleapis.com"
    )
    assert directives["script-src"] == "'self'"


def test_the_persona_picker_allows_no_other_host(api: Api) -> None:
    assert _csp(api.get("/console/"))["connect-src"] == "'self'"


def test_the_sign_in_fake_must_be_on_this_machine(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="CONSOLE_AUTH_EMULATOR_URL must be"):
        _firebase_app(engine, monkeypatch, CONSOLE_AUTH_EMULATOR_URL="http://evil.example:80")


def test_the_build_command_says_what_to_install_without_npm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["console", "build"])
    assert result.exit_code == 1
    assert "npm is not installed: install Node.js 18 or newer with npm" in result.output
