"""The care team's console: pages under ``/console`` for nurses and coordinators at a desk.

The pages are static (HTML, our own ES modules, CSS in ``static/``); everything they show
comes from the JSON API, called with the signed-in person's ID token in
``Authorization: Bearer``. So the console has no rules of its own: the one access policy
answers every call, and what a person may not see is the API's 404 in the page too.

Sign-in, one of three ways, chosen by ``sign_in_mode`` and told to the page by ``config.json``:

- ``personas``: outside production, in the auth-emulator mode only (the guard the API's
  emulator mode has), a picker of the demo personas; ``POST /console/dev/token`` makes a
  development ID token for one of them. Needs no build, so ``carecompanion demo`` needs no npm.
- ``firebase``: with ``FIREBASE_WEB_API_KEY`` set (and not in the persona mode), Firebase
  Authentication in the browser: the official Firebase JS SDK, bundled from npm by
  ``carecompanion console build`` into ``static/bundle/`` (built, never committed). The page
  signs in with email and password, and sends the SDK's ID token (refreshed by the SDK)
  exactly as the mobile apps do. Without the bundle the page says what to run.
- ``unconfigured``: neither; the page says which setting is missing.

Where the browser sends passwords and refresh tokens (Google's two sign-in hosts) is the only
addition to ``connect-src``. Tests point the SDK at a local fake of those hosts with the
Flask config key ``CONSOLE_AUTH_EMULATOR_URL`` (a loopback URL only; not a setting, so no
environment can turn it on).

Sign-out asks the API to end the sign-in (``POST /me/sign-out``), then forgets the tokens.
The tokens live in the tab's ``sessionStorage`` (see ``static/signin.js``): no cookie, hence
no CSRF surface.

Every console response carries a strict Content-Security-Policy (only our own files; no
inline script or style) and headers that keep the pages out of frames and caches.
"""

from __future__ import annotations

import re
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

from backend.config import ConfigError, Settings
from backend.devtokens import emulator_token, personas
from backend.errors import fail, invalid
from backend.models.worklist import WORK_ITEM_KINDS

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="static",
    static_url_path="/static",
)

POLL_SECONDS = 30  # how often the worklist asks for new items (app config CONSOLE_POLL_SECONDS)
TOKEN_LIFETIME = timedelta(hours=1)
# What the Firebase JS SDK calls for email/password sign-in and token refresh.
FIREBASE_AUTH_HOSTS = (
    "https://identitytoolkit.googleapis.com",
    "https://securetoken.googleapis.com",
)
# The built SDK (carecompanion console build) and the command that builds it.
BUNDLE = ("bundle", "firebase-auth.js")
BUILD_COMMAND = "carecompanion console build"
WEB_DIR = Path(__file__).resolve().parent / "web"  # package.json, its lock, the entry
# The ways to sign in the page knows; an OIDC or SAML provider would be one more entry here
# and one more form in static/signin.js (README, "The console").
PROVIDERS = ({"id": "password", "name": "Email and password"},)
_LOOPBACK_URL = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$")


def content_security_policy(connect: tuple[str, ...] = ()) -> str:
    """Our own files only; ``connect`` adds the hosts the page's script may call."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            " ".join(("connect-src 'self'", *connect)),
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()
_STATIC = files(__package__).joinpath("static")
_SHELL = _STATIC.joinpath("index.html")


def _settings() -> Settings:
    settings: Settings = current_app.config["SETTINGS"]
    return settings


def dev_sign_in_enabled(settings: Settings) -> bool:
    """The API's own guard: development tokens exist only in emulator mode, never in
    production."""
    return settings.emulated_auth and not settings.is_production


def sign_in_mode(settings: Settings) -> str:
    """``personas``, ``firebase`` or ``unconfigured`` (see the module's docstring)."""
    if dev_sign_in_enabled(settings):
        return "personas"
    if settings.firebase_web_api_key:
        return "firebase"
    return "unconfigured"


def bundle_built() -> bool:
    return _STATIC.joinpath(*BUNDLE).is_file()


def _auth_emulator() -> str | None:
    """Tests only: the local fake of Google's sign-in hosts the SDK is pointed at."""
    url: str | None = current_app.config.get("CONSOLE_AUTH_EMULATOR_URL")
    return url


@blp.record_once
def _check_auth_emulator(state: BlueprintSetupState) -> None:
    # At start-up, not at the first page: passwords must never be sent off this machine.
    url = state.app.config.get("CONSOLE_AUTH_EMULATOR_URL")
    if url is not None and not _LOOPBACK_URL.match(str(url)):
        raise ConfigError(f"CONSOLE_AUTH_EMULATOR_URL must be http://127.0.0.1:PORT, got {url!r}")


def _connect_hosts(settings: Settings) -> tuple[str, ...]:
    if sign_in_mode(settings) != "firebase":
        return ()
    emulator = _auth_emulator()
    return (emulator,) if emulator else FIREBASE_AUTH_HOSTS


class _TokenRequest(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    persona = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(
        _connect_hosts(_settings())
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    # The page and config: never kept. Our own files hold no data: kept, but revalidated
    # (ETag) on every use, so a new version shows at once.
    static = request.endpoint == "console.static"
    response.headers["Cache-Control"] = "no-cache" if static else "no-store"
    return response


@blp.get("/", endpoint="page")
@blp.get("/<path:page>", endpoint="page")
def shell(page: str = "") -> Response:
    """Every console address is the same page; its script shows the part the path names."""
    return Response(_SHELL.read_bytes(), mimetype="text/html")


@blp.get("/config.json")
def config() -> dict[str, Any]:
    """How this server signs people in, the worklist's refresh interval and its kinds."""
    settings = _settings()
    mode = sign_in_mode(settings)
    answer: dict[str, Any] = {
        "sign_in": mode,
        "environment": settings.env,
        "poll_seconds": int(current_app.config.get("CONSOLE_POLL_SECONDS", POLL_SECONDS)),
        # The same tuple the API validates `kind` with and the spec's WorkItemKind lists.
        "work_item_kinds": list(WORK_ITEM_KINDS),
    }
    if mode == "personas":
        answer["personas"] = [{"persona": k, "name": p["name"]} for k, p in personas().items()]
    elif mode == "firebase":
        answer["firebase"] = {
            # The web config Firebase gives every web app: public, not a secret.
            "apiKey": settings.firebase_web_api_key,
            "authDomain": settings.auth_domain,
            "projectId": settings.firebase_project_id,
        }
        answer["providers"] = list(PROVIDERS)
        answer["bundle"] = "/console/static/" + "/".join(BUNDLE) if bundle_built() else None
        answer["build_command"] = BUILD_COMMAND
        answer["emulator"] = _auth_emulator()
    else:
        answer["missing"] = "FIREBASE_WEB_API_KEY"
    return answer


@blp.post("/dev/token")
def dev_token() -> dict[str, Any]:
    """A development ID token for a demo persona (emulator mode outside production only)."""
    settings = _settings()
    if not dev_sign_in_enabled(settings):
        fail(404, "Not found.")
    try:
        body = _TokenRequest().load(request.get_json(silent=True) or {})
    except ma.ValidationError as exc:
        raise invalid(exc.normalized_messages()) from None
    people = personas()
    person = people.get(body["persona"])
    if person is None:
        raise invalid({"persona": [f"Choose one of {', '.join(people)}."]})
    token = emulator_token(settings, person["uid"], person["email"], person["name"], TOKEN_LIFETIME)
    return {"token": token, "expires_in": int(TOKEN_LIFETIME.total_seconds())}
