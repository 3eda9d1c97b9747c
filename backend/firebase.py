"""The firebase-admin app: created once per settings, lazily, never at import time."""

from __future__ import annotations

import hashlib
import threading

import firebase_admin
import google.auth.credentials
from firebase_admin import credentials

from backend.config import Settings

_lock = threading.Lock()


class NoNetworkCredential(credentials.Base):
    """For the auth emulator and tests: a credential that never calls Google."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()


def _credential(settings: Settings) -> credentials.Base:
    if settings.firebase_credentials:
        return credentials.Certificate(settings.firebase_credentials)
    if settings.emulated_auth or not settings.is_production:
        return NoNetworkCredential()
    return credentials.ApplicationDefault()


def firebase_app(settings: Settings) -> firebase_admin.App:
    key = "|".join(
        str(v)
        for v in (
            settings.firebase_project_id,
            settings.firebase_credentials,
            settings.env,
            settings.firebase_http_timeout_s,
        )
    )
    name = "carecompanion-" + hashlib.sha1(key.encode()).hexdigest()[:12]
    with _lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            return firebase_admin.initialize_app(
                _credential(settings),
                options={
                    "projectId": settings.firebase_project_id,
                    # firebase-admin's default is 120 s: an outage would stall requests.
                    "httpTimeout": settings.firebase_http_timeout_s,
                },
                name=name,
            )
