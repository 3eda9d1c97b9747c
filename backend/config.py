"""Every setting, read once from the environment through strict parsers.

A bad value stops start-up with a message that names the setting; nothing else in the
code reads ``os.environ`` for our own settings.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

ENVIRONMENTS = ("development", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
# Who may read GET /metrics: this host only, unless METRICS_ALLOW names the scrapers.
LOOPBACK = ("127.0.0.0/8", "::1/128")
EMULATOR_HOST_VAR = "FIREBASE_AUTH_EMULATOR_HOST"

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value we refuse to start with."""


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {raw!r}")
        return value

    return parse


def _database_url(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
        raise ValueError(
            f"must start with sqlite:/// or postgresql+psycopg:// (got {value.split('://')[0]!r})"
        )
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
    return value


def _host_port(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$", value):
        raise ValueError(f"expected host:port, got {raw!r}")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    nets = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            nets.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not an IP address or network: {part.strip()!r}") from None
    if not nets:
        raise ValueError("expected a comma-separated list of networks, e.g. 10.0.0.0/8")
    return tuple(nets)


def _project_id(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$", value):
        raise ValueError(f"not a Firebase project id: {raw!r}")
    return value


def _web_api_key(raw: str) -> str:
    # A Firebase web API key is "AIza" and 35 more URL-safe characters (39 in all).
    value = raw.strip()
    if not re.fullmatch(r"AIza[0-9A-Za-z_-]{35}", value):
        raise ValueError("not a Firebase web API key (39 characters starting with AIza)")
    return value


def _host_name(raw: str) -> str:
    value = raw.strip().lower()
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    if len(value) > 253 or not re.fullmatch(rf"(?:{label}\.)+[a-z]{{2,63}}", value):
        raise ValueError(
            f"expected a host name such as my-project.firebaseapp.com (no https://, no path), "
            f"got {raw!r}"
        )
    return value


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"no such file: {raw!r}")
    return raw


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = ""  # empty: a SQLite file in the instance folder
    instance_path: str = ""
    log_level: str = "INFO"
    log_format: str = "text"  # from_env: json in production, text elsewhere
    metrics_allow: tuple[str, ...] = LOOPBACK
    worker_metrics_bind: str | None = None
    firebase_project_id: str = "demo-carecompanion"
    firebase_credentials: str | None = None
    firebase_auth_emulator_host: str | None = None
    firebase_http_timeout_s: int = 10
    # The console's Firebase web config (public by design: every browser receives it).
    firebase_web_api_key: str | None = None
    firebase_auth_domain: str | None = None  # None: <project id>.firebaseapp.com
    token_clock_skew_s: int = 5
    invitation_ttl_hours: int = 72
    invitation_max_failures: int = 5
    invitation_failure_window_min: int = 15
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def emulated_auth(self) -> bool:
        return self.firebase_auth_emulator_host is not None

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def auth_domain(self) -> str:
        """Where Firebase's sign-in pages live: the setting, or the project's default."""
        return self.firebase_auth_domain or f"{self.firebase_project_id}.firebaseapp.com"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> Settings:
        if self.emulated_auth and not self.firebase_project_id.startswith("demo-"):
            # The emulator mode accepts unsigned tokens; Firebase's own emulators refuse to
            # serve a real project except as a demo- project, and so do we, in any env.
            raise ConfigError(
                f"{EMULATOR_HOST_VAR} is set for the real project "
                f"{self.firebase_project_id!r}: the auth emulator mode accepts forged tokens "
                "and is allowed only with a demo- project id; refusing to start"
            )
        if self.is_production and self.emulated_auth:
            raise ConfigError(
                f"{EMULATOR_HOST_VAR} is set but CARECOMPANION_ENV=production: the auth "
                "emulator mode accepts forged and expired tokens; refusing to start"
            )
        if self.is_production and self.firebase_project_id.startswith("demo-"):
            raise ConfigError(
                "FIREBASE_PROJECT_ID: production needs a real Firebase project id, "
                f"not the demo default {self.firebase_project_id!r}"
            )
        return self

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, default_env: str = "development"
    ) -> Settings:
        """The settings from the environment; ``default_env`` when CARECOMPANION_ENV is
        unset (``serve`` and ``worker`` pass "production": development must be asked for)."""
        env = os.environ if env is None else env
        environment = _read(env, "CARECOMPANION_ENV", _one_of(*ENVIRONMENTS), default_env)
        log_format = "json" if environment == "production" else "text"
        return cls(
            env=environment,
            database_url=_read(env, "DATABASE_URL", _database_url, ""),
            instance_path=_read(env, "CARECOMPANION_INSTANCE_PATH", str, ""),
            log_level=_read(env, "LOG_LEVEL", _one_of(*LOG_LEVELS), "INFO"),
            log_format=_read(env, "LOG_FORMAT", _one_of(*LOG_FORMATS), log_format),
            metrics_allow=_read(env, "METRICS_ALLOW", _networks, LOOPBACK),
            worker_metrics_bind=_read(env, "WORKER_METRICS_BIND", _host_port, None),
            firebase_project_id=_read(
                env, "FIREBASE_PROJECT_ID", _project_id, "demo-carecompanion"
            ),
            firebase_credentials=_read(env, "FIREBASE_CREDENTIALS", _existing_file, None),
            firebase_auth_emulator_host=_read(env, EMULATOR_HOST_VAR, _host_port, None),
            firebase_http_timeout_s=_read(env, "FIREBASE_HTTP_TIMEOUT", _int_in(1, 120), 10),
            firebase_web_api_key=_read(env, "FIREBASE_WEB_API_KEY", _web_api_key, None),
            firebase_auth_domain=_read(env, "FIREBASE_AUTH_DOMAIN", _host_name, None),
            token_clock_skew_s=_read(env, "TOKEN_CLOCK_SKEW_SECONDS", _int_in(0, 60), 5),
            invitation_ttl_hours=_read(env, "INVITATION_TTL_HOURS", _int_in(1, 24 * 30), 72),
            invitation_max_failures=_read(env, "INVITATION_MAX_FAILURES", _int_in(1, 100), 5),
            invitation_failure_window_min=_read(
                env, "INVITATION_FAILURE_WINDOW_MINUTES", _int_in(1, 24 * 60), 15
            ),
        ).validate()
