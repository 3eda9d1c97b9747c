"""Delivery numbers for a period: what ``carecompanion stats reminders`` prints.

For the reminders *due* in ``[since, until)``:

- counts by state and by kind;
- lateness, ``sent_at - due_at`` of the sent ones (first accepted send): p50, p95, max;
- failure rate: failed / (sent + failed) -- of the reminders we tried to deliver, the share
  no device accepted; expired rate: expired / (sent + failed + expired) -- too late to send;
- open rate: opened / sent (the app reports ``opened``);
- per-device pushes: accepted by FCM, refused, and the most common error codes.

These are the numbers a team running the service watches. Percentiles are nearest-rank over
the period's sent rows (two timestamps per row are read; fine for an operator's command).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifications.outbox import REMINDER_KINDS, STATES, Delivery, Reminder


@dataclass
class Lateness:
    count: int = 0
    p50: timedelta | None = None
    p95: timedelta | None = None
    max: timedelta | None = None


@dataclass
class ReminderStats:
    since: datetime
    until: datetime
    total: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    lateness: Lateness = field(default_factory=Lateness)
    opened: int = 0
    pushes_accepted: int = 0
    pushes_refused: int = 0
    push_errors: dict[str, int] = field(default_factory=dict)

    def _n(self, state: str) -> int:
        return self.by_state.get(state, 0)

    @property
    def failure_rate(self) -> float | None:
        tried = self._n("sent") + self._n("failed")
        return self._n("failed") / tried if tried else None

    @property
    def expired_rate(self) -> float | None:
        due = self._n("sent") + self._n("failed") + self._n("expired")
        return self._n("expired") / due if due else None

    @property
    def open_rate(self) -> float | None:
        return self.opened / self._n("sent") if self._n("sent") else None


def percentile(sorted_values: list[timedelta], p: float) -> timedelta | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def reminder_stats(db: Session, since: datetime, until: datetime) -> ReminderStats:
    out = ReminderStats(since=since, until=until)
    in_period = (Reminder.due_at >= since) & (Reminder.due_at < until)
    rows = db.execute(
        select(Reminder.kind, Reminder.state, func.count(), func.count(Reminder.opened_at))
        .where(in_period)
        .group_by(Reminder.kind, Reminder.state)
    )
    by_state: Counter[str] = Counter()
    for kind, state, n, opened in rows:
        by_state[state] += n
        out.by_kind.setdefault(kind, {})[state] = n
        if state == "sent":
            out.opened += opened
    out.by_state = dict(by_state)
    out.total = sum(by_state.values())

    late = sorted(
        max(sent_at - due_at, timedelta(0))
        for due_at, sent_at in db.execute(
            select(Reminder.due_at, Reminder.sent_at).where(
                in_period, Reminder.state == "sent", Reminder.sent_at.is_not(None)
            )
        )
        if sent_at is not None
    )
    out.lateness = Lateness(
        count=len(late),
        p50=percentile(late, 50),
        p95=percentile(late, 95),
        max=late[-1] if late else None,
    )

    errors: Counter[str] = Counter()
    for accepted, code, n in db.execute(
        select(Delivery.fcm_message_id.is_not(None), Delivery.error_code, func.count())
        .join(Reminder, Reminder.id == Delivery.reminder_id)
        .where(in_period)
        .group_by(Delivery.fcm_message_id.is_not(None), Delivery.error_code)
    ):
        if accepted:
            out.pushes_accepted += n
        else:
            out.pushes_refused += n
            errors[code or "unknown"] += n
    out.push_errors = dict(errors.most_common())
    return out


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def format_stats(stats: ReminderStats) -> str:
    """A readable table."""
    lines = [
        f"Reminders due {stats.since.isoformat()} .. {stats.until.isoformat()}: {stats.total}",
        "",
    ]
    states = [s for s in STATES if any(s in k for k in stats.by_kind.values())] or ["sent"]
    kinds = [k for k in REMINDER_KINDS if k in stats.by_kind] + sorted(
        set(stats.by_kind) - set(REMINDER_KINDS)
    )
    width = max([len("kind"), len("total"), *map(len, kinds)])
    header = "kind".ljust(width) + "".join(s.rjust(11) for s in states) + "total".rjust(9)
    lines += [header, "-" * len(header)]
    for kind in kinds:
        counts = stats.by_kind[kind]
        lines.append(
            kind.ljust(width)
            + "".join(str(counts.get(s, 0)).rjust(11) for s in states)
            + str(sum(counts.values())).rjust(9)
        )
    lines.append(
        "total".ljust(width)
        + "".join(str(stats.by_state.get(s, 0)).rjust(11) for s in states)
        + str(stats.total).rjust(9)
    )
    lat = stats.lateness
    lines += [
        "",
        f"lateness (sent - due, {lat.count} sent): p50 {_duration(lat.p50)}  "
        f"p95 {_duration(lat.p95)}  max {_duration(lat.max)}",
        f"failure rate (failed / sent+failed): {_rate(stats.failure_rate)}",
        f"expired rate (expired / sent+failed+expired): {_rate(stats.expired_rate)}",
        f"open rate (opened / sent): {_rate(stats.open_rate)}",
        f"pushes: {stats.pushes_accepted} accepted, {stats.pushes_refused} refused"
        + (
            " (" + ", ".join(f"{code} {n}" for code, n in stats.push_errors.items()) + ")"
            if stats.push_errors
            else ""
        ),
    ]
    return "\n".join(lines)
