"""The dispatcher as tests run it: with the domain's re-checks, and with the worker's wiring.

``CHECKED``: the reminder domain's relevance checks with the neutral default texts.
``WIRED``: exactly what the worker hands the dispatcher (checks and localized texts).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from backend import db
from backend.reminders.relevance import CHECKS
from notifications.channels import Channel
from notifications.dispatch import DispatchConfig, dispatch_once
from notifications.worker import wired
from tests.conftest import Clock

CHECKED = DispatchConfig(checks=CHECKS)
WIRED = wired()


def dispatch_until(
    engine: Engine,
    channel: Channel,
    clock: Clock,
    until: datetime,
    config: DispatchConfig = CHECKED,
) -> None:
    """Dispatch every minute from the clock's time to ``until`` (inclusive)."""
    db.session.commit()
    while clock.at <= until:
        while dispatch_once(engine, channel, "w1", clock.at, config).claimed:
            pass
        clock.advance(minutes=1)
    db.session.expire_all()
