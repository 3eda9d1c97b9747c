"""The one source of "now": timezone-aware UTC, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    return _now()


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores the system clock)."""
    global _now
    _now = fn or _system_now


@contextmanager
def use_clock(fn: Callable[[], datetime]) -> Iterator[None]:
    previous = _now
    set_clock(fn)
    try:
        yield
    finally:
        set_clock(previous)
