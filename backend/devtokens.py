"""Unsigned ID tokens for the Firebase auth-emulator mode (development and tests only)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from backend.clock import now
from backend.config import ConfigError, Settings

# The demo people (fixtures/demo.json): the personas a development token may be made for.
DEMO_PEOPLE = Path(__file__).resolve().parent.parent / "fixtures" / "demo.json"


def personas(path: Path = DEMO_PEOPLE) -> dict[str, dict[str, Any]]:
    """The demo people of a fixtures file, by persona (maria, ana, …)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {u["persona"]: u for u in data["users"]}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def emulator_token(
    settings: Settings,
    uid: str,
    email: str | None = None,
    name: str | None = None,
    lifetime: timedelta = timedelta(hours=12),
) -> str:
    """The shape the Firebase auth emulator issues: alg none, empty signature."""
    if not settings.emulated_auth or settings.is_production:
        raise ConfigError("dev tokens exist only in the auth-emulator mode outside production")
    issued = int(now().timestamp())
    project = settings.firebase_project_id
    claims: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "firebase": {"identities": {}, "sign_in_provider": "password"},
    }
    if email:
        claims.update(email=email, email_verified=True)
    if name:
        claims["name"] = name
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
