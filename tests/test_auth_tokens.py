"""Production sign-in, offline: real RS256 ID tokens checked by the real firebase-admin
against signing certificates served from 127.0.0.1; and strict configuration.

Every production test gets its own firebase-admin app (the credential file lives in the
test's tmp_path, which is part of the app's cache key) and so its own certificate cache.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from backend import db
from backend.app import create_app
from backend.cli import cli
from backend.config import EMULATOR_HOST_VAR, ConfigError, Settings
from backend.firebase import firebase_app
from backend.models import User
from tests.certserver import (
    CertServer,
    SigningKey,
    firebase_claims,
    point_at_certs,
    service_account_file,
)
from tests.conftest import START, Clock, assert_error

PROJECT = "carecompanion-prodtest"
KID = "prodtest-key-1"


# --- keys, certificate server, production app ---------------------------------------


@dataclass(frozen=True)
class Keys:
    good: SigningKey  # published by the certificate server
    forger: SigningKey  # a different key claiming the same kid


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(SigningKey.generate(KID), SigningKey.generate(KID))


@pytest.fixture
def certs(keys: Keys) -> Iterator[CertServer]:
    server = CertServer({keys.good.kid: keys.good.cert_pem}).start()
    yield server
    server.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Prod:
    app: Flask
    client: FlaskClient
    fb_app: firebase_admin.App
    settings: Settings

    def me(self, token: str | None = None) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.client.get("/me", headers=headers)


@pytest.fixture
def no_emulator(ctx: Flask, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Production mode: the emulator switch (set by the session app) is off for this test.

    monkeypatch puts it back afterwards, and the scoped session is re-bound to the test
    engine for whatever runs next.
    """
    monkeypatch.delenv(EMULATOR_HOST_VAR, raising=False)
    yield
    db.init_engine(engine)


@pytest.fixture
def make_prod(
    no_emulator: None,
    engine: Engine,
    keys: Keys,
    certs: CertServer,
    tmp_path: Path,
) -> Iterator[Callable[..., Prod]]:
    made: list[firebase_admin.App] = []

    def make(cert_url: str | None = None, **overrides: Any) -> Prod:
        credential = service_account_file(tmp_path / f"sa-{len(made)}.json", keys.forger, PROJECT)
        settings = Settings(
            env="production",
            firebase_project_id=PROJECT,
            firebase_credentials=str(credential),
            log_level="WARNING",
        ).with_overrides(**overrides)
        app = create_app(settings, ENGINE=engine, TESTING=True)
        fb_app = firebase_app(settings)
        made.append(fb_app)
        point_at_certs(fb_app, cert_url or certs.url)
        return Prod(app, app.test_client(), fb_app, settings)

    yield make
    for fb_app in made:
        firebase_admin.delete_app(fb_app)


@pytest.fixture
def prod(make_prod: Callable[..., Prod]) -> Prod:
    return make_prod()


def assert_unauthorized(response: Any) -> dict[str, Any]:
    body = assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    return body


def _user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(header)}.{_b64(claims)}."


# --- a good token -------------------------------------------------------------------


def test_valid_rs256_token_signs_in_and_provisions_the_user(
    prod: Prod, keys: Keys, certs: CertServer, clock: Clock
) -> None:
    token = keys.good.sign(
        firebase_claims(PROJECT, "prod-uid-1", "rosa@example.org", "Rosa Delgado")
    )
    r = prod.me(token)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["email"] == "rosa@example.org"
    assert body["display_name"] == "Rosa Delgado"

    user = db.session.scalars(select(User)).one()
    assert user.firebase_uid == "prod-uid-1"
    assert user.email == "rosa@example.org"
    assert user.display_name == "Rosa Delgado"
    assert user.last_seen_at == START  # the injected clock, not the token's times
    assert user.id == body["id"]

    # The certificates are fetched once and then cached, as Google's Cache-Control allows.
    again = prod.me(token)
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    assert certs.hits == 1
    assert _user_count() == 1


def test_production_default_credentials_path_verifies_without_network(
    no_emulator: None,
    engine: Engine,
    keys: Keys,
    certs: CertServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No FIREBASE_CREDENTIALS: firebase-admin resolves Application Default Credentials
    when it builds its auth client (even though verifying needs none); point ADC at a
    local file so nothing probes the metadata server."""
    adc = service_account_file(tmp_path / "adc.json", keys.forger, PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    settings = Settings(env="production", firebase_project_id=PROJECT, log_level="WARNING")
    app = create_app(settings, ENGINE=engine, TESTING=True)
    fb_app = firebase_app(settings)
    try:
        point_at_certs(fb_app, certs.url)
        token = keys.good.sign(firebase_claims(PROJECT, "adc-uid", "adc@example.org"))
        r = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["email"] == "adc@example.org"
    finally:
        firebase_admin.delete_app(fb_app)


def test_a_signed_out_sign_in_is_refused_even_with_a_refreshed_token(
    prod: Prod, keys: Keys
) -> None:
    signed_in = int(time.time()) - 120
    first = keys.good.sign(firebase_claims(PROJECT, "rosa", issued=signed_in))
    # What the refresh endpoint hands out later: a new token of the same sign-in.
    refreshed = keys.good.sign(
        firebase_claims(PROJECT, "rosa", issued=signed_in + 60, auth_time=signed_in)
    )
    other_device = keys.good.sign(firebase_claims(PROJECT, "rosa", issued=signed_in - 30))
    assert prod.me(refreshed).status_code == 200
    headers = {"Authorization": f"Bearer {first}"}
    assert prod.client.post("/me/sign-out", headers=headers).status_code == 204
    for token in (first, refreshed):
        body = assert_unauthorized(prod.me(token))
        assert body["message"] == "This sign-in was signed out; sign in again."
    assert prod.me(other_device).status_code == 200


# --- tokens that must be refused ----------------------------------------------------


def _forged(keys: Keys) -> str:
    return keys.forger.sign(firebase_claims(PROJECT, "victim-uid", "victim@example.org"))


def _wrong_audience(keys: Keys) -> str:
    return keys.good.sign(firebase_claims(PROJECT, "u1", aud="another-project"))


def _wrong_issuer(keys: Keys) -> str:
    iss = "https://securetoken.google.com/another-project"
    return keys.good.sign(firebase_claims(PROJECT, "u1", iss=iss))


def _expired(keys: Keys) -> str:
    # google-auth checks exp against the real wall clock: an hour in the real past.
    return keys.good.sign(firebase_claims(PROJECT, "u1", issued=int(time.time()) - 7200))


def _issued_in_the_future(keys: Keys) -> str:
    return keys.good.sign(firebase_claims(PROJECT, "u1", issued=int(time.time()) + 600))


def _unknown_kid(keys: Keys) -> str:
    return keys.good.sign(firebase_claims(PROJECT, "u1"), kid="not-published")


def _no_subject(keys: Keys) -> str:
    return keys.good.sign(firebase_claims(PROJECT, "", user_id="u1"))


def _emulator_style(keys: Keys) -> str:
    # Exactly what the auth emulator (and backend.devtokens) issues: alg none, no signature.
    return _unsigned({"alg": "none", "typ": "JWT"}, firebase_claims(PROJECT, "u1"))


def _unsigned_with_kid(keys: Keys) -> str:
    return _unsigned({"alg": "none", "kid": KID, "typ": "JWT"}, firebase_claims(PROJECT, "u1"))


def _rs256_header_no_signature(keys: Keys) -> str:
    return _unsigned({"alg": "RS256", "kid": KID, "typ": "JWT"}, firebase_claims(PROJECT, "u1"))


def _custom_token_audience(keys: Keys) -> str:
    aud = (
        "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
    )
    return keys.good.sign(firebase_claims(PROJECT, "u1", aud=aud))


# Each with the reason firebase-admin / google-auth gives (logged by backend.auth), so a
# case cannot pass by failing for some other reason.
BAD_TOKENS: dict[str, tuple[Callable[[Keys], str], str]] = {
    "forged-signature-same-kid": (_forged, "Could not verify token signature"),
    "wrong-audience": (_wrong_audience, 'incorrect "aud"'),
    "wrong-issuer": (_wrong_issuer, 'incorrect "iss"'),
    "issued-in-the-future": (_issued_in_the_future, "Token used too early"),
    "unknown-kid": (_unknown_kid, "Certificate for key id not-published not found"),
    "empty-subject": (_no_subject, 'empty string "sub"'),
    "emulator-style-alg-none": (_emulator_style, 'has no "kid" claim'),
    "alg-none-with-kid": (_unsigned_with_kid, "incorrect algorithm"),
    "rs256-without-signature": (_rs256_header_no_signature, "Could not verify token signature"),
    "custom-token-audience": (_custom_token_audience, "given a custom token"),
}


@pytest.mark.parametrize(("make_token", "reason"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_refused_with_401(
    prod: Prod,
    keys: Keys,
    make_token: Callable[[Keys], str],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="backend.auth"):
        body = assert_unauthorized(prod.me(make_token(keys)))
    assert body["message"] == "The ID token is not valid."
    assert reason in caplog.text
    assert _user_count() == 0


def test_expired_token_is_refused_and_says_so(prod: Prod, keys: Keys) -> None:
    body = assert_unauthorized(prod.me(_expired(keys)))
    assert "expired" in body["message"]
    assert _user_count() == 0
    fresh = prod.me(keys.good.sign(firebase_claims(PROJECT, "u1")))
    assert fresh.status_code == 200


BAD_HEADERS: dict[str, str | None] = {
    "missing": None,
    "basic-scheme": "Basic dXNlcjpwYXNz",
    "token-scheme": "Token abc",
    "bare-bearer": "Bearer",
    "empty-bearer": "Bearer ",
    "blank-bearer": "Bearer    ",
    "not-a-jwt": "Bearer abc",
    "three-junk-segments": "Bearer a.b.c",
    "four-segments": "Bearer a.b.c.d",
    "bad-base64": "Bearer !!!.@@@.###",
    "json-array-segments": f"Bearer {base64.urlsafe_b64encode(b'[]').decode()}.e30.",
    "overlong": "Bearer " + "a" * 9000,
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_authorization_headers_are_refused_with_401(
    prod: Prod, certs: CertServer, header: str | None
) -> None:
    r = prod.client.get("/me", headers={} if header is None else {"Authorization": header})
    assert_unauthorized(r)
    assert _user_count() == 0
    assert certs.hits == 0  # refused before any certificate fetch


def test_missing_header_message_tells_how_to_sign_in(prod: Prod) -> None:
    body = assert_unauthorized(prod.me())
    assert "Bearer" in body["message"]


def test_public_endpoints_need_no_token_in_production(prod: Prod) -> None:
    assert prod.client.get("/openapi.json").status_code == 200


# --- the certificate endpoint failing -----------------------------------------------


def test_cert_server_error_is_503_and_recovers(prod: Prod, keys: Keys, certs: CertServer) -> None:
    token = keys.good.sign(firebase_claims(PROJECT, "u1", "u1@example.org"))
    certs.status = 500
    body = assert_error(prod.me(token), 503)
    assert "unavailable" in body["message"]
    assert _user_count() == 0
    certs.status = 200  # the failure was not cached
    assert prod.me(token).status_code == 200


def test_cert_server_unreachable_is_503(make_prod: Callable[..., Prod], keys: Keys) -> None:
    prod = make_prod(cert_url=f"http://127.0.0.1:{_closed_port()}/certs")
    body = assert_error(prod.me(keys.good.sign(firebase_claims(PROJECT, "u1"))), 503)
    assert "unavailable" in body["message"]
    assert _user_count() == 0


def test_stalled_cert_server_times_out_after_the_configured_timeout(
    make_prod: Callable[..., Prod], keys: Keys
) -> None:
    # Accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        prod = make_prod(cert_url=f"http://127.0.0.1:{port}/certs", firebase_http_timeout_s=1)
        started = time.monotonic()
        assert_error(prod.me(keys.good.sign(firebase_claims(PROJECT, "u1"))), 503)
        assert time.monotonic() - started < 10  # firebase-admin's own default is 120 s


# --- start-up refusals and configuration --------------------------------------------


def test_production_app_refuses_to_start_with_emulator_switch_in_environment(
    no_emulator: None, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EMULATOR_HOST_VAR, "127.0.0.1:9099")
    settings = Settings(env="production", firebase_project_id=PROJECT)
    with pytest.raises(ConfigError, match=EMULATOR_HOST_VAR):
        create_app(settings, ENGINE=engine, TESTING=True)
    with pytest.raises(ConfigError, match=EMULATOR_HOST_VAR):
        settings.with_overrides(firebase_auth_emulator_host="127.0.0.1:9099").validate()


@pytest.mark.parametrize("project", [PROJECT, "demo-carecompanion"])
def test_from_env_refuses_emulator_in_production(project: str) -> None:
    env = {
        "CARECOMPANION_ENV": "production",
        "FIREBASE_PROJECT_ID": project,
        EMULATOR_HOST_VAR: "127.0.0.1:9099",
    }
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert str(err.value).startswith(EMULATOR_HOST_VAR)


def test_from_env_accepts_a_production_environment() -> None:
    settings = Settings.from_env(
        {
            "CARECOMPANION_ENV": "production",
            "FIREBASE_PROJECT_ID": PROJECT,
            EMULATOR_HOST_VAR: "",  # empty counts as unset, as in firebase-admin
            "DATABASE_URL": "postgresql://app@db.internal/care",
            "FIREBASE_HTTP_TIMEOUT": "5",
            "FIREBASE_WEB_API_KEY": " AIzaSyA-test_key-0000000000000000000000 ",
            "FIREBASE_AUTH_DOMAIN": "Sign-In.Example.ORG",
        }
    )
    assert settings.is_production and not settings.emulated_auth
    assert settings.database_url == "postgresql+psycopg://app@db.internal/care"
    assert settings.firebase_http_timeout_s == 5
    assert settings.firebase_web_api_key == "AIzaSyA-test_key-0000000000000000000000"
    assert settings.auth_domain == "sign-in.example.org"
    # Without FIREBASE_AUTH_DOMAIN: the domain Firebase gives every project.
    assert Settings(firebase_project_id=PROJECT).auth_domain == f"{PROJECT}.firebaseapp.com"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CARECOMPANION_ENV", "staging"),
        ("DATABASE_URL", "mysql://x"),
        ("FIREBASE_HTTP_TIMEOUT", "abc"),
        ("FIREBASE_HTTP_TIMEOUT", "0"),
        ("FIREBASE_HTTP_TIMEOUT", "121"),
        ("INVITATION_TTL_HOURS", "-1"),
        ("TOKEN_CLOCK_SKEW_SECONDS", "61"),
        ("LOG_LEVEL", "verbose"),
        ("FIREBASE_PROJECT_ID", "Not A Project"),
        ("FIREBASE_CREDENTIALS", "/nonexistent/service-account.json"),
        (EMULATOR_HOST_VAR, "localhost"),
        ("FIREBASE_WEB_API_KEY", "not-a-key"),
        ("FIREBASE_WEB_API_KEY", "AIzaSyA-too-short"),
        ("FIREBASE_AUTH_DOMAIN", "https://my-project.firebaseapp.com"),
        ("FIREBASE_AUTH_DOMAIN", "my-project.firebaseapp.com/__/auth"),
        ("FIREBASE_AUTH_DOMAIN", "localhost"),
    ],
)
def test_bad_setting_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert str(err.value).startswith(f"{name}: ")


def test_production_needs_a_real_project_id() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"CARECOMPANION_ENV": "production"})
    assert str(err.value).startswith("FIREBASE_PROJECT_ID")


# --- the dev-token command in production --------------------------------------------


@pytest.fixture
def cli_runner(engine: Engine) -> Iterator[CliRunner]:
    """The CLI builds its own app (and so re-binds the scoped session); undo that."""
    yield CliRunner()
    db.init_engine(engine)


def test_token_command_refuses_production_with_emulator_set(cli_runner: CliRunner) -> None:
    env = {"CARECOMPANION_ENV": "production", "FIREBASE_PROJECT_ID": PROJECT}
    env[EMULATOR_HOST_VAR] = "127.0.0.1:9099"
    result = cli_runner.invoke(cli, ["token", "--as", "maria"], env=env)
    assert result.exit_code == 2, result.output
    assert "configuration error" in result.output and EMULATOR_HOST_VAR in result.output
    assert "eyJ" not in result.output  # no token printed


def test_token_command_refuses_production_without_emulator(
    cli_runner: CliRunner, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {
        "CARECOMPANION_ENV": "production",
        "FIREBASE_PROJECT_ID": PROJECT,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
        EMULATOR_HOST_VAR: None,
    }
    result = cli_runner.invoke(cli, ["token", "--as", "maria"], env=env)
    assert result.exit_code == 1, result.output
    assert "dev tokens exist only in the auth-emulator mode" in result.output
    assert "eyJ" not in result.output


# --- production is the default for serve and worker ----------------------------------


def test_the_emulator_mode_is_refused_for_a_real_project_in_any_environment() -> None:
    for env_name in ("development", "test"):
        env = {
            "CARECOMPANION_ENV": env_name,
            "FIREBASE_PROJECT_ID": PROJECT,
            EMULATOR_HOST_VAR: "127.0.0.1:9099",
        }
        with pytest.raises(ConfigError) as err:
            Settings.from_env(env)
        assert str(err.value).startswith(EMULATOR_HOST_VAR) and PROJECT in str(err.value)
    demo = {"FIREBASE_PROJECT_ID": "demo-carecompanion", EMULATOR_HOST_VAR: "127.0.0.1:9099"}
    assert Settings.from_env(demo).emulated_auth  # a demo- project may use it (development)


def test_serve_and_worker_default_to_production(cli_runner: CliRunner) -> None:
    # The emulator switch leaking in from a shell, CARECOMPANION_ENV unset: refused, with
    # the demo project id too (production refuses emulated auth) -- nothing is served.
    for command in (["serve"], ["worker", "--channel", "console"]):
        env: dict[str, str | None] = {
            "CARECOMPANION_ENV": None,
            "FIREBASE_PROJECT_ID": "demo-carecompanion",
            EMULATOR_HOST_VAR: "127.0.0.1:9099",
        }
        result = cli_runner.invoke(cli, command, env=env)
        assert result.exit_code != 0, (command, result.output)
        assert "CARECOMPANION_ENV=production" in result.output, result.output
    unset = {"FIREBASE_PROJECT_ID": PROJECT}
    assert Settings.from_env(unset, default_env="production").is_production
    assert not Settings.from_env(unset).is_production  # other commands: development
