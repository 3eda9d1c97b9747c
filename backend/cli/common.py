"""Helpers shared by the command modules: the app's settings, the demo personas, instants."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import current_app

from backend import devtokens
from backend.config import Settings
from backend.fixtures import DEFAULT_FIXTURES


def current_settings() -> Settings:
    """The settings of the app whose context the command runs in."""
    return current_app.config["SETTINGS"]


def personas(path: Path = DEFAULT_FIXTURES) -> dict[str, dict[str, Any]]:
    """The demo people of a fixtures file, by persona (maria, ana, …)."""
    return devtokens.personas(path)


def parse_instant(value: str, hint: str) -> datetime:
    """An ISO date or time from option ``hint``; UTC when it has no offset."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date or time: {value!r}", param_hint=hint) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
