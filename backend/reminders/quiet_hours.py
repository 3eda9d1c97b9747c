"""Quiet hours: non-urgent reminders wait for the end of the recipient's quiet period.

A recipient's ``quiet_hours_start`` / ``quiet_hours_end`` are wall-clock times in *their own*
``time_zone`` (not the patient's), the interval is ``[start, end)`` and may wrap midnight
(22:00-07:00); equal bounds mean no quiet hours. Non-urgent kinds (:data:`QUIET_KINDS`) due
inside the quiet period get ``due_at`` (and ``next_attempt_at``) moved to the end of that
period; their ``not_after`` stays. If the moved time is at or past ``not_after`` the reminder
would only be sent uselessly, so it is not planned at all. Two lead-time reminders of one
appointment moved onto the same instant become one. Dose kinds never wait: the 23:00 bedtime
pill is wanted at 23:00, and its follow-up and alerts are the chain the patient chose. A
refill reminder is keyed by the patient-local date of its moved due time
(:func:`backend.reminders.refills.rekey`). Quiet hours are read when a row is planned;
changing them re-plans that user's pending reminders
(:func:`backend.reminders.planner.replan_for_user`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models.user import User
from backend.reminders.refills import rekey

# Non-urgent: these wait for the end of the recipient's quiet hours (see the docstring).
# A check-in prompt waits too (it stays answerable for hours), and is dropped if the end of the
# quiet hours is past its answer window.
QUIET_KINDS = ("appointment", "refill", "summary", "device_health", "checkin_prompt")


@dataclass(frozen=True)
class QuietHours:
    zone: ZoneInfo
    start: time
    end: time


def quiet_until(due: datetime, quiet: QuietHours | None) -> datetime | None:
    """The end of the quiet period ``due`` falls in, or None if it falls in none."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = due.astimezone(quiet.zone)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside, next_day = quiet.start <= t < quiet.end, False
    else:  # wraps midnight: [start, 24:00) + [00:00, end)
        inside, next_day = t >= quiet.start or t < quiet.end, t >= quiet.start
    if not inside:
        return None
    day = local.date() + timedelta(days=1 if next_day else 0)
    # A wall time in a DST gap resolves (fold=0) to the instant one offset earlier, still
    # after ``due``; the max() guards the impossible anyway.
    end = datetime.combine(day, quiet.end, tzinfo=quiet.zone).astimezone(due.tzinfo)
    return max(end, due)


def quiet_hours_of(db: Session, user_ids: Iterable[int]) -> dict[int, QuietHours]:
    """The quiet hours of those users who set them (one query)."""
    ids = sorted(set(user_ids))
    found: dict[int, QuietHours] = {}
    for i in range(0, len(ids), 1000):
        for uid, zone, start, end in db.execute(
            select(User.id, User.time_zone, User.quiet_hours_start, User.quiet_hours_end).where(
                User.id.in_(ids[i : i + 1000]),
                User.quiet_hours_start.is_not(None),
            )
        ):
            if start is not None and end is not None:
                found[uid] = QuietHours(ZoneInfo(zone or "UTC"), start, end)
    return found


def apply_quiet_hours(
    db: Session, rows: list[dict[str, Any]], zones: dict[int, str]
) -> list[dict[str, Any]]:
    """Move non-urgent rows out of their recipient's quiet hours; drop the ones it makes
    useless (moved to or past ``not_after``) and the doubles it makes."""
    users = {r["user_id"] for r in rows if r["kind"] in QUIET_KINDS}
    if not users:
        return rows
    quiet = quiet_hours_of(db, users)
    if not quiet:
        return rows
    out: list[dict[str, Any]] = []
    seen_appt: set[tuple[int, int, datetime]] = set()
    for row in rows:
        if row["kind"] in QUIET_KINDS:
            moved = quiet_until(row["due_at"], quiet.get(row["user_id"]))
            if moved is not None:
                if moved >= row["not_after"]:
                    continue
                row = {**row, "due_at": moved, "next_attempt_at": moved}
                if row["kind"] == "refill":
                    row = rekey(row, ZoneInfo(zones.get(row["patient_id"]) or "UTC"))
            if row["kind"] == "appointment":
                spot = (int(row["subject"]["appointment_id"]), row["user_id"], row["due_at"])
                if spot in seen_appt:
                    continue
                seen_appt.add(spot)
        out.append(row)
    return out
