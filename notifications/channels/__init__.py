"""Transports that put a rendered push on a device: one module per channel.

Every channel takes a batch of :class:`Push` and answers one :class:`Result` per push, in
order. A failed push carries a :class:`SendError` that says whether trying again can help
(transient, with the server's Retry-After when it gave one) and whether the device token
itself is dead (the device is deactivated and never tried again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Push:
    reminder_id: int
    device_id: int
    token: str
    platform: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    # After this instant the push is useless; passed to FCM as the message TTL so a phone
    # that comes back online hours later does not show a stale reminder.
    expires_at: datetime | None = None
    # The reminder whose notification this one takes the place of on the phone (its tag and
    # collapse id), e.g. "Ana is on it" over the missed-dose alert it answers.
    replaces: int | None = None

    @property
    def collapse_id(self) -> str:
        """Android notification tag and APNs collapse id: a repeat replaces, not duplicates;
        a push that ``replaces`` another reminder's takes that one's."""
        return f"reminder-{self.replaces if self.replaces is not None else self.reminder_id}"


@dataclass(frozen=True)
class SendError:
    code: str
    permanent: bool
    token_invalid: bool = False
    retry_after_s: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Result:
    push: Push
    message_id: str | None = None
    error: SendError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Channel(Protocol):
    name: str
    max_batch: int

    def send(self, pushes: Sequence[Push]) -> list[Result]: ...


__all__ = ["Channel", "Push", "Result", "SendError"]
