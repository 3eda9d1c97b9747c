"""Production sign-in in a real Chromium, offline: the console's page runs the official
Firebase JS SDK (the bundle ``carecompanion console build`` makes), pointed by
``connectAuthEmulator`` at a local fake of Google's sign-in hosts (``tests/identitytoolkit.py``)
that signs ID tokens with the test keys; the backend runs in production mode and verifies
them for real against the certificate server (``tests/certserver.py``).

Priya signs in with her email and password and sees her worklist; a wrong password says so;
sign-out returns to the sign-in page and the API refuses that sign-in's tokens from then on,
refreshed ones too; short-lived tokens are refreshed by the SDK before the API sees them;
there is no persona picker and the API refuses emulator tokens. Without the bundle the page
says what to run. Screenshots go to ``$CONSOLE_SCREENSHOTS`` (default a pytest temp folder).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
from flask import Flask
from sqlalchemy.engine import Engine

import backend.console
from backend import db
from backend.app import create_app
from backend.config import EMULATOR_HOST_VAR, Settings
from backend.console import BUILD_COMMAND, bundle_built
from backend.demo_story import tell
from backend.devtokens import personas
from backend.firebase import firebase_app
from backend.fixtures import load_fixtures
from tests.browser import AXE, Browser, LiveServer, skip_reason
from tests.certserver import (
    CertServer,
    SigningKey,
    firebase_claims,
    point_at_certs,
    service_account_file,
)
from tests.identitytoolkit import Account as FirebaseAccount
from tests.identitytoolkit import IdentityToolkit

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
needs_bundle = pytest.mark.skipif(
    not bundle_built(), reason=f"the console's Firebase bundle is not built: {BUILD_COMMAND}"
)

PROJECT = "carecompanion-console"
API_KEY = "AIzaSyTEST-console-key-0000000000000000"
PASSWORD = "correct horse battery staple"
PRIYA = FirebaseAccount("demo-priya", "priya@example.org", PASSWORD, "Priya Natarajan")


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("console-key-1")


@pytest.fixture(scope="module")
def certs(key: SigningKey) -> Iterator[CertServer]:
    server = CertServer({key.kid: key.cert_pem}).start()
    yield server
    server.stop()


@pytest.fixture
def google(key: SigningKey) -> Iterator[IdentityToolkit]:
    fake = IdentityToolkit(PROJECT, API_KEY, key, [PRIYA]).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def chromium(shots: Path) -> Iterator[Browser]:
    browser = Browser("http://127.0.0.1:9", shots)  # each test sets the live server's base
    yield browser
    browser.quit()


@pytest.fixture
def story(ctx: Flask) -> None:
    """The demo's morning, told through the test app while it is still in emulator mode
    (a test asks for it before ``production``, which turns that mode off)."""
    assert os.environ.get(EMULATOR_HOST_VAR), "ask for `story` before `production`"
    load_fixtures(db.session())
    db.session.commit()
    tell(ctx, ctx.config["SETTINGS"], personas())
    db.session.expire_all()


@pytest.fixture
def production(
    ctx: Flask,
    engine: Engine,
    key: SigningKey,
    certs: CertServer,
    google: IdentityToolkit,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., LiveServer]]:
    """Serve the console from an app in production mode (no emulator switch anywhere)."""
    monkeypatch.delenv(EMULATOR_HOST_VAR, raising=False)  # put back after the test
    folder = tmp_path_factory.mktemp("sa")
    settings = Settings(
        env="production",
        firebase_project_id=PROJECT,
        firebase_credentials=str(service_account_file(folder / "sa.json", key, PROJECT)),
        firebase_web_api_key=API_KEY,
        log_level="WARNING",
    )
    servers: list[LiveServer] = []
    fb_app = firebase_app(settings)
    point_at_certs(fb_app, certs.url)

    def serve(**flask_config: Any) -> LiveServer:
        app = create_app(
            settings,
            ENGINE=engine,
            TESTING=True,
            CONSOLE_AUTH_EMULATOR_URL=google.url,
            **flask_config,
        )
        live = LiveServer(app).__enter__()
        servers.append(live)
        return live

    yield serve
    for live in servers:
        live.__exit__()
    firebase_admin.delete_app(fb_app)
    db.init_engine(engine)


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    chromium.driver.get_log("browser")
    yield chromium
    chromium.driver.execute_script("window.sessionStorage.clear()")
    chromium.driver.get("about:blank")
    chromium.driver.get_log("browser")


def _at(browser: Browser, live: LiveServer) -> Browser:
    browser.base = live.url
    return browser


def _sign_in(browser: Browser, email: str, password: str) -> None:
    form = browser.wait_for("form[aria-label='Sign in with email and password']")
    form.find_element("css selector", "input[name=email]").send_keys(email)
    form.find_element("css selector", "input[name=password]").send_keys(password)
    form.find_element("css selector", "button[type=submit]").click()


def _storage(browser: Browser, which: str) -> dict[str, str]:
    found: dict[str, str] = browser.driver.execute_script(
        f"return Object.fromEntries(Object.entries(window.{which}))"
    )
    return found


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


@needs_bundle
def test_priya_signs_in_with_her_password_and_her_sign_out_is_final(
    browser: Browser,
    story: None,
    production: Callable[..., LiveServer],
    google: IdentityToolkit,
) -> None:
    live = production()
    browser = _at(browser, live)
    browser.open("/console/")
    browser.wait_for("input[name=email]")
    assert browser.find_all("select[name=persona]") == []
    assert "Development sign-in" not in browser.find("main").text
    browser.screenshot("firebase-sign-in")

    _sign_in(browser, "priya@example.org", "not her password")
    browser.wait_text("The email or password is not right", "main .error")
    assert browser.find("input[name=password]").get_attribute("value") == ""
    assert browser.find_all("#who button") == []
    browser.screenshot("firebase-wrong-password")
    if AXE.exists():
        assert [v["id"] for v in browser.axe()] == []
    # Chromium logs the refused sign-in's 400, as it would Google's; nothing else.
    (refused,) = browser.console_errors()
    assert "accounts:signInWithPassword" in refused and "400 (Bad Request)" in refused

    browser.find("input[name=email]").clear()
    _sign_in(browser, "priya@example.org", PASSWORD)
    browser.wait_text("Signed in as", "#who")
    assert browser.heading() == "Worklist"
    assert "Priya Natarajan" in browser.find("#who").text
    browser.wait_for("ol.items li.item")
    assert "María García" in browser.find("ol.items li.item").text
    browser.screenshot("firebase-worklist-priya")

    # The SDK keeps the sign-in in this tab's sessionStorage, nothing in localStorage, and no
    # token ever went in a URL.
    (refresh_token,) = google.refresh_tokens()
    token = google.id_tokens[-1]
    assert not any(
        refresh_token in v or token in v for v in _storage(browser, "localStorage").values()
    )
    kept = _storage(browser, "sessionStorage")
    assert any(k.startswith(f"firebase:authUser:{API_KEY}") for k in kept)
    urls = browser.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not any(token in u or refresh_token in u or PASSWORD in u for u in urls)
    assert google.calls[:2] == [
        "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",  # the wrong one
        "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
    ]

    client = live.server.app.test_client()
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    browser.find("#who button").click()
    browser.wait_for("input[name=email]")
    assert browser.find_all("#who button") == []
    assert not any(k.startswith("firebase:authUser") for k in _storage(browser, "sessionStorage"))
    browser.screenshot("firebase-signed-out")

    # The old session is over on the server: the last token, and one refreshed afterwards
    # with the refresh token (as someone who copied it would), are refused.
    stolen = google.refresh({"grant_type": ["refresh_token"], "refresh_token": [refresh_token]})
    for old in (token, stolen[1]["id_token"]):
        answer = client.get("/worklist", headers={"Authorization": f"Bearer {old}"})
        assert answer.status_code == 401
        assert answer.get_json()["message"] == "This sign-in was signed out; sign in again."
    browser.open("/console/worklist")
    browser.wait_for("input[name=email]")
    assert browser.console_errors() == []


@needs_bundle
def test_the_sdk_refreshes_short_lived_tokens_and_a_reload_keeps_the_sign_in(
    browser: Browser,
    story: None,
    production: Callable[..., LiveServer],
    google: IdentityToolkit,
) -> None:
    google.lifetime_s = 20  # under the SDK's 30-second margin: refreshed before every use
    browser = _at(browser, production())
    browser.open("/console/")
    _sign_in(browser, "Priya@Example.org ", PASSWORD)
    browser.wait_for("ol.items li.item")
    browser.find("nav a[href='/console/panel']").click()
    browser.wait_text("Showing 2 of 2 patients", "main .summary")
    assert google.refreshes >= 2  # the API was only ever sent refreshed tokens
    before = google.refreshes

    browser.driver.refresh()  # the tab's session storage brings the sign-in back
    browser.wait_text("Showing 2 of 2 patients", "main .summary")
    assert "Priya Natarajan" in browser.find("#who").text
    assert google.refreshes > before
    assert set(google.calls) <= {
        "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
        "/identitytoolkit.googleapis.com/v1/accounts:lookup",
        "/securetoken.googleapis.com/v1/token",
    }
    assert browser.console_errors() == []


def test_production_has_no_picker_and_refuses_emulator_tokens(
    production: Callable[..., LiveServer], google: IdentityToolkit
) -> None:
    client = production().server.app.test_client()
    config = client.get("/console/config.json").get_json()
    assert config["sign_in"] == "firebase" and "personas" not in config
    assert config["firebase"] == {
        "apiKey": API_KEY,
        "authDomain": f"{PROJECT}.firebaseapp.com",
        "projectId": PROJECT,
    }
    assert client.post("/console/dev/token", json={"persona": "priya"}).status_code == 404
    # What the auth emulator (and the development picker) makes: unsigned, for Priya.
    forged = _unsigned(firebase_claims(PROJECT, "demo-priya", "priya@example.org"))
    answer = client.get("/worklist", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    policy = client.get("/console/").headers["Content-Security-Policy"]
    assert f"connect-src 'self' {google.url};" in policy
    assert "script-src 'self';" in policy


def test_without_the_bundle_the_page_says_what_to_run(
    browser: Browser,
    production: Callable[..., LiveServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend.console, "BUNDLE", ("bundle", "not-built-here.js"))
    browser = _at(browser, production())
    browser.open("/console/")
    browser.wait_text("The sign-in page is not built on this server")
    assert BUILD_COMMAND in browser.find("main").text
    assert browser.find_all("input[name=password]") == []
    browser.screenshot("firebase-not-built")
    assert browser.console_errors() == []
