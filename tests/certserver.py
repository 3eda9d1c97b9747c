"""A stand-in for Google's ID-token signing-certificate endpoint, on 127.0.0.1.

Keys are generated at test time (nothing secret is ever committed). The server answers
``GET`` with ``{"<kid>": "<PEM certificate>"}`` and the same ``Cache-Control`` header
Google sends, so firebase-admin's caching session behaves as in production.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import firebase_admin
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from firebase_admin import auth as fb_auth
from google.auth import crypt, jwt

from tests.localserver import LocalServer, QuietHandler


@dataclass(frozen=True)
class SigningKey:
    """An RSA key, its self-signed certificate and the key id it is published under."""

    kid: str
    private_pem: str
    cert_pem: str

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=2))
            .sign(key, hashes.SHA256())
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls(kid, private_pem, cert.public_bytes(serialization.Encoding.PEM).decode())

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        """An RS256 JWT over ``claims``; ``kid`` overrides the published key id."""
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=kid or self.kid)
        token: bytes = jwt.encode(signer, claims)
        return token.decode()


def firebase_claims(
    project: str,
    uid: str,
    email: str | None = None,
    name: str | None = None,
    *,
    issued: int | None = None,
    lifetime_s: int = 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """The claims of a Firebase ID token; google-auth checks iat/exp on the real clock."""
    iat = int(time.time()) if issued is None else issued
    claims: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": iat,
        "auth_time": iat,
        "exp": iat + lifetime_s,
        "firebase": {"identities": {}, "sign_in_provider": "password"},
    }
    if email:
        claims.update(email=email, email_verified=True)
    if name:
        claims["name"] = name
    claims.update(overrides)
    return claims


@dataclass
class CertServer(LocalServer):
    """Serves ``certs`` (kid -> PEM) on an ephemeral 127.0.0.1 port in a daemon thread.

    ``status`` other than 200 makes it answer with that status and no certificates.
    ``hits`` counts the GET requests that reached it.
    """

    certs: dict[str, str]
    status: int = 200
    max_age_s: int = 3600
    hits: int = 0

    @property
    def url(self) -> str:
        return f"{self.base}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"

    def start(self) -> CertServer:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if owner.status != 200:
                    body = b'{"error": "unavailable"}'
                    self.send_response(owner.status)
                else:
                    body = json.dumps(owner.certs).encode()
                    self.send_response(200)
                    self.send_header(
                        "Cache-Control",
                        f"public, max-age={owner.max_age_s}, must-revalidate, no-transform",
                    )
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler, "certserver")
        return self


def service_account_file(path: Path, key: SigningKey, project: str) -> Path:
    """A syntactically real service-account file; nothing ever uses it to call Google."""
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project,
                "private_key_id": "fake-key-id",
                "private_key": key.private_pem,
                "client_email": f"firebase-adminsdk@{project}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "http://127.0.0.1:9/token",
            }
        ),
        encoding="utf-8",
    )
    return path


def point_at_certs(fb_app: firebase_admin.App, url: str) -> None:
    """firebase-admin's one override: where it fetches the signing certificates."""
    fb_auth._get_client(fb_app)._token_verifier.id_token_verifier.cert_url = url
