"""The care team's console: pages under ``/console`` for nurses and coordinators at a desk.

The pages are static (HTML, our own ES modules, CSS in ``static/``); everything they show
comes from the JSON API, called with the signed-in person's ID token in
``Authorization: Bearer``. So the console has no rules of its own: the one access policy
answers every call, and what a person may not see is the API's 404 in the page too.

Sign-in: outside production, in the auth-emulator mode only (the guard the API's emulator
mode has), ``config.json`` lists the demo personas and ``POST /console/dev/token`` makes a
development ID token for one of them. Anywhere else ``config.json`` says sign-in is not
configured (production needs the Firebase JS SDK, see the README) and the token route is a
404. The token lives in the tab's ``sessionStorage``: no cookie, hence no CSRF surface.

Every console response carries a strict Content-Security-Policy (only our own files; no
inline script or style) and headers that keep the pages out of frames and caches.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, current_app, request

from backend.config import Settings
from backend.devtokens import emulator_token, personas
from backend.errors import fail, invalid

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="static",
    static_url_path="/static",
)

POLL_SECONDS = 30  # how often the worklist asks for new items (app config CONSOLE_POLL_SECONDS)
TOKEN_LIFETIME = timedelta(hours=1)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_SHELL = files(__package__).joinpath("static", "index.html")


def _settings() -> Settings:
    settings: Settings = current_app.config["SETTINGS"]
    return settings


def dev_sign_in_enabled(settings: Settings) -> bool:
    """The API's own guard: development tokens exist only in emulator mode, never in
    production."""
    return settings.emulated_auth and not settings.is_production


class _TokenRequest(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    persona = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
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
    """How this server signs people in, and the worklist's refresh interval."""
    settings = _settings()
    poll = int(current_app.config.get("CONSOLE_POLL_SECONDS", POLL_SECONDS))
    if not dev_sign_in_enabled(settings):
        return {"sign_in": "unconfigured", "environment": settings.env, "poll_seconds": poll}
    people = [{"persona": key, "name": p["name"]} for key, p in personas().items()]
    return {
        "sign_in": "personas",
        "environment": settings.env,
        "poll_seconds": poll,
        "personas": people,
    }


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
