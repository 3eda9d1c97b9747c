"""The number a push names, counted when it is sent, by kind: one static table the worker
hands the renderer (``notifications.texts.Count``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from backend.models.outbox import Reminder
from backend.reminders import morning_summary, refills

COUNTS: Mapping[str, Callable[[Reminder], int | None]] = {
    morning_summary.KIND: morning_summary.count_for,
    refills.KIND: refills.count_for,
}


def count_for(reminder: Reminder) -> int | None:
    found = COUNTS.get(reminder.kind)
    return found(reminder) if found is not None else None
