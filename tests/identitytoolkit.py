"""A stand-in for the two Google hosts the Firebase JS SDK signs in with, on 127.0.0.1.

The SDK, pointed here by ``connectAuthEmulator``, sends what it would send to Google, under
the emulator's path scheme (``/<host>/<path>``):

- ``POST /identitytoolkit.googleapis.com/v1/accounts:signInWithPassword`` -- email and
  password in, an ID token and a refresh token out; a wrong password or an unknown email is
  ``INVALID_LOGIN_CREDENTIALS`` (email-enumeration protection, Firebase's default);
- ``POST /identitytoolkit.googleapis.com/v1/accounts:lookup`` -- the account of an ID token;
- ``POST /securetoken.googleapis.com/v1/token`` -- a refresh token in (form-encoded), a new
  ID token out, with the same ``auth_time`` (the same sign-in), as Google's does.

ID tokens are RS256-signed with a test ``SigningKey`` whose certificate the ``CertServer``
publishes, so the backend in production mode verifies them for real. Times are the real
clock's: google-auth checks ``iat``/``exp`` against it. Cross-origin calls get the CORS
answers a browser needs. ``calls`` records every path asked for, so a test can say that the
browser called nothing else.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.certserver import SigningKey, firebase_claims
from tests.localserver import LocalServer, QuietHandler

SIGN_IN = "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"
LOOKUP = "/identitytoolkit.googleapis.com/v1/accounts:lookup"
REFRESH = "/securetoken.googleapis.com/v1/token"


@dataclass(frozen=True)
class Account:
    uid: str
    email: str
    password: str
    name: str


@dataclass
class _SignIn:
    account: Account
    auth_time: int


@dataclass
class IdentityToolkit(LocalServer):
    project: str
    api_key: str
    key: SigningKey
    accounts: list[Account]
    lifetime_s: int = 3600  # of each ID token; under 30 s the SDK refreshes before every use
    calls: list[str] = field(default_factory=list)
    id_tokens: list[str] = field(default_factory=list)
    refreshes: int = 0
    _sessions: dict[str, _SignIn] = field(default_factory=dict)  # by refresh token
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return self.base

    # --- the three endpoints -------------------------------------------------------------

    def _id_token(self, sign_in: _SignIn) -> str:
        who = sign_in.account
        claims = firebase_claims(
            self.project,
            who.uid,
            who.email,
            who.name,
            lifetime_s=self.lifetime_s,
            auth_time=sign_in.auth_time,
            firebase={"identities": {"email": [who.email]}, "sign_in_provider": "password"},
        )
        token = self.key.sign(claims)
        with self._lock:
            self.id_tokens.append(token)
        return token

    def sign_in(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        found = [a for a in self.accounts if a.email == str(body.get("email", "")).lower()]
        if not found or found[0].password != body.get("password"):
            return 400, _error("INVALID_LOGIN_CREDENTIALS")
        refresh_token = secrets.token_urlsafe(32)
        sign_in = _SignIn(found[0], int(time.time()))
        with self._lock:
            self._sessions[refresh_token] = sign_in
        return 200, {
            "kind": "identitytoolkit#VerifyPasswordResponse",
            "localId": sign_in.account.uid,
            "email": sign_in.account.email,
            "displayName": sign_in.account.name,
            "idToken": self._id_token(sign_in),
            "registered": True,
            "refreshToken": refresh_token,
            "expiresIn": str(self.lifetime_s),
        }

    def lookup(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = body.get("idToken")
        with self._lock:
            known = token in self.id_tokens
            sessions = list(self._sessions.values())
        if not known:
            return 400, _error("INVALID_ID_TOKEN")
        uid = json.loads(_payload(str(token)))["user_id"]
        who = next(s.account for s in sessions if s.account.uid == uid)
        millis = str(int(time.time() * 1000))
        return 200, {
            "kind": "identitytoolkit#GetAccountInfoResponse",
            "users": [
                {
                    "localId": who.uid,
                    "email": who.email,
                    "displayName": who.name,
                    "emailVerified": True,
                    "providerUserInfo": [
                        {
                            "providerId": "password",
                            "email": who.email,
                            "federatedId": who.email,
                            "rawId": who.email,
                            "displayName": who.name,
                        }
                    ],
                    "validSince": str(int(time.time()) - 86400),
                    "lastLoginAt": millis,
                    "createdAt": millis,
                }
            ],
        }

    def refresh(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        refresh_token = (form.get("refresh_token") or [""])[0]
        with self._lock:
            sign_in = self._sessions.get(refresh_token)
        if (form.get("grant_type") or [""])[0] != "refresh_token" or sign_in is None:
            return 400, _error("INVALID_REFRESH_TOKEN")
        with self._lock:
            self.refreshes += 1
        return 200, {
            "access_token": (token := self._id_token(sign_in)),
            "id_token": token,
            "expires_in": str(self.lifetime_s),
            "token_type": "Bearer",
            "refresh_token": refresh_token,
            "user_id": sign_in.account.uid,
            "project_id": self.project,
        }

    def refresh_tokens(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    # --- the HTTP server -----------------------------------------------------------------

    def start(self) -> IdentityToolkit:
        owner = self

        class Handler(QuietHandler):
            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
                self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
                asked = self.headers.get("Access-Control-Request-Headers", "Content-Type")
                self.send_header("Access-Control-Allow-Headers", asked)
                self.send_header("Access-Control-Max-Age", "600")

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                with owner._lock:
                    owner.calls.append(url.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if parse_qs(url.query).get("key") != [owner.api_key]:
                    status, body = 400, _error("API key not valid. Please pass a valid API key.")
                elif url.path == SIGN_IN:
                    status, body = owner.sign_in(json.loads(raw or "{}"))
                elif url.path == LOOKUP:
                    status, body = owner.lookup(json.loads(raw or "{}"))
                elif url.path == REFRESH:
                    status, body = owner.refresh(parse_qs(raw))
                else:
                    status, body = 404, _error("NOT_FOUND")
                data = json.dumps(body).encode()
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler, "identitytoolkit")
        return self


def _error(message: str) -> dict[str, Any]:
    """Google's error body; the SDK reads ``error.message`` and maps it to an auth/ code."""
    return {
        "error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "invalid"}],
        }
    }


def _payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
