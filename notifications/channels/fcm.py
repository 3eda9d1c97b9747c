"""Firebase Cloud Messaging over HTTP v1, through firebase-admin's ``messaging.send_each``.

One channel per firebase app (built once, lazily, by ``backend.firebase.firebase_app`` with
the app's ``httpTimeout`` set; firebase-admin's default of 120 s would let an outage stall a
batch for minutes).

HTTP retries inside the client. firebase-admin 7.x mounts a pool of 100 connections with
urllib3 retries only on ``https://fcm.googleapis.com``; any other base URL (a local test
server) gets a pool of 10. Its retry policy also sleeps for a 429/503's Retry-After header,
up to 4 times and up to 6 hours each (urllib3's ``retry_after_max``), inside the worker
thread while the batch's lease runs out. So this channel mounts its own adapter on whatever
base URL the service posts to — production and tests behave the same — with a short, bounded
policy: two quick retries on 500/503 for blips (worst case ~0.5 s of backoff), and no
sleeping on Retry-After: the final answer, with its Retry-After, goes back to the outbox,
which reschedules the row instead of holding a thread.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import firebase_admin
import requests.adapters
from firebase_admin import exceptions, messaging
from urllib3.util.retry import Retry

from backend.clock import now
from notifications.channels import Push, Result, SendError

MAX_BATCH = 500  # FCM's limit for send_each
POOL_SIZE = 100  # firebase-admin's own pool for fcm.googleapis.com

DEFAULT_RETRY = Retry(
    total=3,
    connect=1,
    read=1,
    status=2,
    status_forcelist=(500, 503),
    backoff_factor=0.25,
    backoff_max=2,
    respect_retry_after_header=False,
    allowed_methods=None,  # POST too: the same as firebase-admin's own policy
    raise_on_status=False,
)

# FCM error codes that mean the token will never work again.
_DEAD_TOKEN = {
    messaging.UnregisteredError: "UNREGISTERED",
    messaging.SenderIdMismatchError: "SENDER_ID_MISMATCH",
}
_TRANSIENT = {
    messaging.QuotaExceededError: "QUOTA_EXCEEDED",
    exceptions.UnavailableError: "UNAVAILABLE",
    exceptions.InternalError: "INTERNAL",
    exceptions.DeadlineExceededError: "DEADLINE_EXCEEDED",
    exceptions.ResourceExhaustedError: "RESOURCE_EXHAUSTED",
    exceptions.UnknownError: "UNKNOWN",
    # Our own credentials or project setup: nothing about this device is wrong; retry
    # (bounded) while an operator fixes it, never deactivate anyone's device.
    exceptions.UnauthenticatedError: "UNAUTHENTICATED",
    exceptions.PermissionDeniedError: "PERMISSION_DENIED",
    messaging.ThirdPartyAuthError: "THIRD_PARTY_AUTH_ERROR",
}


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = error.http_response
    raw = response.headers.get("Retry-After") if response is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare from FCM; our own backoff applies


def _token_is_invalid(error: exceptions.FirebaseError) -> bool:
    """INVALID_ARGUMENT is about the token only when FCM names ``message.token``.

    Otherwise our payload is wrong, and deactivating the device would punish the person
    for our bug (every device would be deactivated by one bad template).
    """
    response = error.http_response
    if response is None:
        return False
    try:
        details = json.loads(response.content.decode()).get("error", {}).get("details", [])
    except (ValueError, AttributeError):
        return False
    for detail in details:
        for violation in detail.get("fieldViolations", []) or []:
            if violation.get("field") == "message.token":
                return True
    return False


def classify(error: Exception) -> SendError:
    """Map a firebase-admin exception to permanent/transient and dead-token."""
    text = str(error)[:300]
    for exc_type, code in _DEAD_TOKEN.items():
        if isinstance(error, exc_type):
            return SendError(code, permanent=True, token_invalid=True, message=text)
    if isinstance(error, exceptions.InvalidArgumentError):
        return SendError(
            "INVALID_ARGUMENT", permanent=True, token_invalid=_token_is_invalid(error), message=text
        )
    for exc_type, code in _TRANSIENT.items():
        if isinstance(error, exc_type):
            assert isinstance(error, exceptions.FirebaseError)
            return SendError(code, permanent=False, retry_after_s=_retry_after(error), message=text)
    if isinstance(error, exceptions.FirebaseError):
        return SendError(str(error.code), permanent=False, message=text)
    return SendError(type(error).__name__, permanent=False, message=text)


def build_message(push: Push) -> messaging.Message:
    ttl = None
    apns_headers = {"apns-collapse-id": push.collapse_id, "apns-priority": "10"}
    if push.expires_at is not None:
        ttl = max(timedelta(0), push.expires_at - now())
        apns_headers["apns-expiration"] = str(int(push.expires_at.timestamp()))
    return messaging.Message(
        token=push.token,
        notification=messaging.Notification(title=push.title, body=push.body),
        data=push.data,
        android=messaging.AndroidConfig(
            priority="high",
            ttl=ttl,
            notification=messaging.AndroidNotification(tag=push.collapse_id),
        ),
        apns=messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(aps=messaging.Aps(sound="default")),
        ),
    )


class FcmChannel:
    name = "fcm"
    max_batch = MAX_BATCH

    def __init__(self, app: firebase_admin.App, retry: Retry = DEFAULT_RETRY) -> None:
        self.app = app
        self._mount(retry)

    def _mount(self, retry: Retry) -> None:
        # firebase-admin keeps one _MessagingService per app; its session is what
        # send_each uses. Private attributes, checked so an upgrade fails loudly here.
        service: Any = messaging._get_messaging_service(self.app)
        url = getattr(service, "_fcm_url", None)
        client = getattr(service, "_client", None)
        if not isinstance(url, str) or client is None:
            raise RuntimeError("firebase-admin changed: no _fcm_url/_client on the service")
        parts = urlsplit(url)
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE, max_retries=retry
        )
        client.session.mount(f"{parts.scheme}://{parts.netloc}", adapter)
        self.url = url

    def send(self, pushes: Sequence[Push]) -> list[Result]:
        results: list[Result] = []
        for start in range(0, len(pushes), MAX_BATCH):
            chunk = list(pushes[start : start + MAX_BATCH])
            with warnings.catch_warnings():
                # firebase-admin 7.7 deprecates Message.token for Message.fid (installation
                # ids). Our clients register FCM registration tokens, which the v1 API
                # still takes as "token"; moving to fids is a change in the apps first.
                warnings.filterwarnings("ignore", "Message.token is deprecated")
                messages = [build_message(p) for p in chunk]
            try:
                batch = messaging.send_each(messages, app=self.app)
            except exceptions.FirebaseError as error:  # the whole batch failed to go out
                failure = classify(error)
                results.extend(Result(p, error=failure) for p in chunk)
                continue
            for push, response in zip(chunk, batch.responses, strict=True):
                if response.success:
                    results.append(Result(push, message_id=response.message_id))
                else:
                    results.append(Result(push, error=classify(response.exception)))
        return results
