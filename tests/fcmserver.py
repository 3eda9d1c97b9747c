"""A stand-in for FCM's HTTP v1 endpoint on 127.0.0.1, for the real firebase-admin client.

``POST /v1/projects/{project}/messages:send`` records the message and answers like FCM:
``{"name": "projects/{project}/messages/{id}"}``, or — scripted per token — one of FCM's
real error bodies (google.rpc.Status with a ``google.firebase.fcm.v1.FcmError`` detail, as
documented at firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode and parsed by
firebase-admin's ``_MessagingService._build_fcm_error``).

    server = FcmServer().start()
    server.script("tok-1", "UNREGISTERED")               # every send to tok-1
    server.script("tok-2", "UNAVAILABLE", "UNAVAILABLE", then_ok=True)  # twice, then OK
    app = local_fcm_app(server)                           # a firebase app pointed here
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import firebase_admin
from firebase_admin import messaging

from backend.firebase import NoNetworkCredential
from tests.localserver import LocalServer, QuietHandler

PROJECT = "demo-carecompanion"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# status, rpc status, message, FCM errorCode, extra details
ERRORS: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found.", []),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        [
            {
                "@type": _BAD_REQUEST,
                "fieldViolations": [
                    {
                        "field": "message.token",
                        "description": "The registration token is not a valid FCM "
                        "registration token",
                    }
                ],
            }
        ],
    ),
    # A payload problem, not a token problem (e.g. a bad data key): same status and code.
    "INVALID_PAYLOAD": (
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        [
            {
                "@type": _BAD_REQUEST,
                "fieldViolations": [
                    {"field": "message.data[0].key", "description": "Invalid data key"}
                ],
            }
        ],
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch", []),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' "
        "of service 'fcm.googleapis.com'.",
        [],
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable.", []),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered.", []),
}


def error_body(code: str) -> tuple[int, dict[str, Any]]:
    status, rpc_status, message, extra = ERRORS[code]
    fcm_code = "INVALID_ARGUMENT" if code == "INVALID_PAYLOAD" else code
    details = [{"@type": _FCM_ERROR, "errorCode": fcm_code}, *extra]
    return status, {
        "error": {"code": status, "message": message, "status": rpc_status, "details": details}
    }


@dataclass
class Answer:
    code: str
    retry_after: int | None = None


def _tag_and_token(message: dict[str, Any]) -> tuple[str, str]:
    return (message["android"]["notification"]["tag"], message["token"])


@dataclass
class FcmServer(LocalServer):
    project: str = PROJECT
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted messages
    attempts: Counter[str] = field(default_factory=Counter)  # every POST, by token
    outage: Answer | None = None  # when set, every request gets this answer
    # When set, each message is accepted (recorded) and its answer held until the event is
    # set: a client killed meanwhile is "FCM accepted, the sender never heard back".
    stall: threading.Event | None = None
    # False: only each message's (tag, token) is counted, not the message kept -- a soak
    # sends thousands, whose bodies grew this process by a third in 30 minutes.
    keep_messages: bool = True
    _counted: Counter[tuple[str, str]] = field(default_factory=Counter)
    _scripts: dict[str, deque[Answer]] = field(default_factory=dict)
    _sticky: dict[str, Answer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 0

    # -- scripting --------------------------------------------------------------------
    def script(
        self, token: str, *codes: str, retry_after: int | None = None, then_ok: bool = False
    ) -> None:
        """Answer ``token`` with ``codes`` in order; the last repeats unless ``then_ok``."""
        answers = [Answer(c, retry_after) for c in codes]
        with self._lock:
            self._scripts[token] = deque(answers)
            if then_ok:
                self._sticky.pop(token, None)
            else:
                self._sticky[token] = answers[-1]

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self._counted.clear()
            self.attempts.clear()
            self._scripts.clear()
            self._sticky.clear()
            self.outage = None
            if self.stall is not None:
                self.stall.set()
            self.stall = None

    def _answer_for(self, token: str) -> Answer | None:
        with self._lock:
            self.attempts[token] += 1
            if self.outage is not None:
                return self.outage
            queue = self._scripts.get(token)
            if queue:
                return queue.popleft()
            return self._sticky.get(token)

    # -- what arrived -----------------------------------------------------------------
    def tags(self) -> Counter[tuple[str, str]]:
        """(android tag, token) of every accepted message: exactly-once is all counts 1."""
        kept = Counter(_tag_and_token(m) for m in self.received)
        return kept + self._counted

    def to(self, token: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("token") == token]

    # -- server -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.base

    @property
    def fcm_url_template(self) -> str:
        """The value for ``messaging._MessagingService.FCM_URL`` ({0} is the project)."""
        return self.base_url + "/v1/projects/{0}/messages:send"

    def start(self) -> FcmServer:
        owner = self
        path = re.compile(r"^/v1/projects/([^/]+)/messages:send$")

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as FCM: the client pools connections

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                match = path.match(self.path)
                if not match:
                    self._reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
                    return
                message = json.loads(raw)["message"]
                answer = owner._answer_for(message.get("token", ""))
                if answer is not None:
                    status, body = error_body(answer.code)
                    headers = {}
                    if answer.retry_after is not None:
                        headers["Retry-After"] = str(answer.retry_after)
                    self._reply(status, body, headers)
                    return
                with owner._lock:
                    owner._next_id += 1
                    name = f"projects/{match.group(1)}/messages/{owner._next_id}"
                    if owner.keep_messages:
                        owner.received.append(message)
                    else:
                        owner._counted[_tag_and_token(message)] += 1
                    gate = owner.stall
                if gate is not None:
                    gate.wait(timeout=30)
                self._reply(200, {"name": name})

            def _reply(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client died waiting (crash tests)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # send_each opens up to 500 connections at once
            daemon_threads = True

        self._serve(Handler, "fcmserver", Server)
        return self


_url_lock = threading.Lock()


def local_fcm_app(
    fcm_url_template: str, project: str = PROJECT, timeout_s: int = 5
) -> firebase_admin.App:
    """A firebase app whose messaging service posts to the local server.

    ``FCM_URL`` is read once, when the app's messaging service is built; it is restored
    right after so nothing else in the process is redirected.
    """
    app = firebase_admin.initialize_app(
        NoNetworkCredential(),
        options={"projectId": project, "httpTimeout": timeout_s},
        name=f"local-fcm-{uuid.uuid4().hex[:8]}",
    )
    with _url_lock:
        saved = messaging._MessagingService.FCM_URL
        messaging._MessagingService.FCM_URL = fcm_url_template
        try:
            messaging._get_messaging_service(app)
        finally:
            messaging._MessagingService.FCM_URL = saved
    return app
