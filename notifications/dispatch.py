"""The dispatcher: claim due reminders, re-check, render, send, record. One batch per call.

Each step is a small function that does one batch and returns what it did; the worker calls
:func:`dispatch_once` every few seconds (and again while work remains), tests call the steps
directly with an injected ``now``.

Claims. A batch is claimed with one conditional UPDATE that sets ``state = 'claimed'``, a
lease owner and a lease expiry, and counts the attempt. On PostgreSQL the candidate rows are
picked with ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers take disjoint batches
without waiting on each other. On SQLite the same statement runs inside ``BEGIN IMMEDIATE``:
the write lock is taken when the transaction begins, so two processes cannot both read the
same pending rows and then both claim them (a deferred transaction would only upgrade to a
write lock at the UPDATE, and the loser would fail with SQLITE_BUSY instead of waiting).
Every later write of the batch is conditional on ``state = 'claimed' AND lease_owner = me``:
a dispatcher whose lease ran out and was taken over writes nothing and counts ``lost_lease``.

Recording. The claim is the record before the send (attempts + 1, owner, lease); the
deliveries and the new state are the record after it.

The one window for a second send. FCM has accepted a push, and the dispatcher dies (SIGKILL,
power loss, a lost database connection) before the "after" record commits. Nothing in our
database says the push went out, so when the lease expires the reaper returns the row to
``pending`` and another dispatcher sends it again. This cannot be closed from our side: FCM
has no idempotency key for HTTP v1 sends. It is made harmless on the phone: every push for
reminder N carries the Android notification ``tag`` and the APNs ``apns-collapse-id``
``reminder-N``, so the second copy replaces the first in the notification shade instead of
showing a duplicate. (A reminder whose ``subject.replaces`` names another one carries
*that* one's tag instead, so it replaces that notification: "Ana is on it" over the alert.)
The lease (default 120 s) is longer than the worst-case send of a batch
(``httpTimeout`` 10 s x 3 tries + backoff), so a dispatcher that is merely slow is not taken
over while it is still sending.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from backend.clock import now as clock_now
from backend.db import write_transaction
from backend.models.device import Device
from backend.models.outbox import Delivery, Reminder
from backend.models.user import User
from notifications.channels import Channel, Push, Result

# -- what the composition root passes in -------------------------------------------------

RelevanceCheck = Callable[[Session, Sequence[Reminder]], Mapping[int, str]]
"""Given claimed reminders of one kind, return {reminder id: reason} for those that no
longer matter (dose logged, appointment cancelled, access revoked); they are cancelled."""

Renderer = Callable[[Reminder, User], tuple[str, str, dict[str, str]]]
"""(title, body, extra data) for one reminder and its recipient."""


# Lock-screen safe: no medication, dose or diagnosis. Localized texts replace these.
_DEFAULT_TEXTS = {
    "dose": ("Reminder", "It's time for your medicine."),
    "dose_followup": ("Reminder", "Did you take your medicine? Tap to log it."),
    "missed_dose_alert": ("Care alert", "A scheduled dose has not been logged."),
    "alert_taken": ("Care alert", "Someone is on it."),
    "appointment": ("Upcoming appointment", "You have an appointment coming up."),
    "refill": ("Refill reminder", "A medicine is running low."),
    "device_health": ("Notifications", "Reminders are not reaching a phone."),
    "summary": ("Today", "Open the app to see today's plan."),
}


def default_render(reminder: Reminder, user: User) -> tuple[str, str, dict[str, str]]:
    title, body = _DEFAULT_TEXTS.get(reminder.kind, ("Reminder", "Open the app for details."))
    return title, body, {}


# -- configuration and results -------------------------------------------------------


@dataclass(frozen=True)
class DispatchConfig:
    batch_size: int = 500  # one send_each call
    lease: timedelta = timedelta(seconds=120)  # > worst-case send of a batch, see above
    max_attempts: int = 8  # 30 s .. 1 h apart: about 2 h of retrying, past most not_after
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    # The domain's re-checks by kind ("*": every kind) and the text renderer; the worker
    # passes ``backend.reminders.relevance.CHECKS`` and ``notifications.texts``' renderer.
    # The bare defaults check nothing and send neutral, lock-screen-safe texts.
    checks: Mapping[str, Sequence[RelevanceCheck]] = field(default_factory=dict)
    render: Renderer = default_render


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0
    pushes_ok: int = 0
    pushes_failed: int = 0
    devices_deactivated: int = 0
    leases_reaped: int = 0
    lost_lease: int = 0
    # For the worker's metrics: refused pushes by FCM error code, and (kind, seconds from
    # due to accepted) of each reminder whose first push FCM accepted in the batch.
    push_errors: dict[str, int] = field(default_factory=dict)
    lateness: list[tuple[str, float]] = field(default_factory=list)

    def __iadd__(self, other: BatchResult) -> BatchResult:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                for key, n in theirs.items():
                    mine[key] = mine.get(key, 0) + n
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)
        return self

    def counts(self) -> dict[str, int]:
        """The counts alone (what a log line carries)."""
        return {f.name: v for f in fields(self) if isinstance(v := getattr(self, f.name), int)}


# -- transactions --------------------------------------------------------------------


def _mine(owner: str) -> Any:
    return (Reminder.state == "claimed") & (Reminder.lease_owner == owner)


# -- steps ---------------------------------------------------------------------------


def expire_overdue(engine: Engine, now: datetime) -> int:
    """Pending reminders past their lateness limit become ``expired`` (never sent)."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(Reminder)
            # Only rows already due: the pending rows' next_attempt_at index bounds the scan
            # to them, not to the whole planned horizon.
            .where(
                Reminder.state == "pending",
                Reminder.next_attempt_at <= now,
                Reminder.not_after < now,
            )
            .values(state="expired", last_error="past not_after before it could be sent")
        )
        return result.rowcount or 0


def reap_expired_leases(engine: Engine, now: datetime) -> int:
    """Claimed rows whose lease ran out (their dispatcher died) go back to ``pending``."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(Reminder)
            .where(Reminder.state == "claimed", Reminder.lease_expires_at < now)
            .values(
                state="pending",
                next_attempt_at=now,
                last_error=func.coalesce(Reminder.lease_owner, "") + ": lease expired",
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return result.rowcount or 0


def claim_due(engine: Engine, owner: str, now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Claim up to ``limit`` due pending reminders for ``owner``; returns their ids."""
    # A MATERIALIZED CTE, not a plain IN (subquery): PostgreSQL may run an uncorrelated
    # subquery again for each outer row (a semi-join rescan), and each rescan's SKIP LOCKED
    # skips the rows this very UPDATE has just claimed and locks the next ``limit`` -- one
    # claim took every due row. The CTE is evaluated once, so at most ``limit`` rows.
    due = (
        select(Reminder.id)
        .where(Reminder.state == "pending", Reminder.next_attempt_at <= now)
        .order_by(Reminder.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    stmt = (
        update(Reminder)
        .where(Reminder.id.in_(select(due.c.id)), Reminder.state == "pending")
        .values(
            state="claimed",
            lease_owner=owner,
            lease_expires_at=now + lease,
            attempts=Reminder.attempts + 1,
        )
        .returning(Reminder.id)
    )
    with write_transaction(engine) as conn:
        return sorted(conn.execute(stmt).scalars())


@dataclass
class Prepared:
    """A claimed batch after the re-check: what to send, and what each reminder was."""

    pushes: list[Push] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)  # reminder id -> attempt number
    delivered_before: set[int] = field(default_factory=set)  # reminders with an earlier OK
    due: dict[int, tuple[str, datetime]] = field(default_factory=dict)  # id -> (kind, due_at)
    result: BatchResult = field(default_factory=BatchResult)


def _finish(conn: Connection, owner: str, ids: Sequence[int], **values: Any) -> int:
    if not ids:
        return 0
    result = conn.execute(
        update(Reminder)
        .where(Reminder.id.in_(list(ids)), _mine(owner))
        .values(lease_owner=None, lease_expires_at=None, **values)
    )
    return result.rowcount or 0


def _message_data(reminder: Reminder, extra: Mapping[str, str]) -> dict[str, str]:
    # Ids only (deep links); FCM data values must be strings.
    data = {"reminder_id": str(reminder.id), "kind": reminder.kind}
    if reminder.patient_id is not None:
        data["patient_id"] = str(reminder.patient_id)
    for key, value in (reminder.subject or {}).items():
        if isinstance(value, str | int) and not isinstance(value, bool):
            data[key] = str(value)
    data.update(extra)
    return data


def _replaces(reminder: Reminder) -> int | None:
    """``subject.replaces``: the reminder whose notification this one takes the place of."""
    value = (reminder.subject or {}).get("replaces")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prepare(
    engine: Engine,
    owner: str,
    ids: Sequence[int],
    now: datetime,
    config: DispatchConfig = DispatchConfig(),
) -> Prepared:
    """Expire, re-check and render a claimed batch; returns the pushes to send."""
    out = Prepared()
    if not ids:
        return out
    with write_transaction(engine) as conn, Session(bind=conn) as db:
        reminders = list(db.scalars(select(Reminder).where(Reminder.id.in_(ids), _mine(owner))))
        out.result.lost_lease += len(ids) - len(reminders)

        late = [r.id for r in reminders if r.not_after < now]
        out.result.expired += _finish(
            conn, owner, late, state="expired", last_error="past not_after when claimed"
        )
        live = [r for r in reminders if r.not_after >= now]

        cancelled = _run_checks(db, live, config.checks)
        for reason, group in _group_by_value(cancelled).items():
            out.result.cancelled += _finish(
                conn, owner, group, state="cancelled", cancelled_reason=reason[:60]
            )
        live = [r for r in live if r.id not in cancelled]
        if not live:
            return out

        users = {
            u.id: u for u in db.scalars(select(User).where(User.id.in_({r.user_id for r in live})))
        }
        devices: dict[int, list[Device]] = defaultdict(list)
        for device in db.scalars(
            select(Device)
            .where(
                Device.user_id.in_(users),
                Device.active.is_(True),
                Device.notifications_enabled.is_(True),
            )
            .order_by(Device.id)
        ):
            devices[device.user_id].append(device)
        done = _devices_done(db, [r.id for r in live if r.attempts > 1])

        unreachable: list[int] = []
        for reminder in live:
            earlier = done.get(reminder.id, {})
            targets = [d for d in devices[reminder.user_id] if d.id not in earlier]
            if any(earlier.values()):
                out.delivered_before.add(reminder.id)
            if not targets:
                unreachable.append(reminder.id)
                continue
            title, body, extra = config.render(reminder, users[reminder.user_id])
            data = _message_data(reminder, extra)
            out.attempts[reminder.id] = reminder.attempts
            out.due[reminder.id] = (reminder.kind, reminder.due_at)
            out.pushes.extend(
                Push(
                    reminder_id=reminder.id,
                    device_id=d.id,
                    token=d.fcm_token,
                    platform=d.platform,
                    title=title,
                    body=body,
                    data=data,
                    expires_at=reminder.not_after,
                    replaces=_replaces(reminder),
                )
                for d in targets
            )
        # Every device already has it (the rest were deactivated since): done.
        already = [i for i in unreachable if i in out.delivered_before]
        out.result.sent += _finish(conn, owner, already, state="sent")
        # Nobody can receive it. Not "cancelled" (it still matters): a failure the
        # device-health check must see.
        nobody = [i for i in unreachable if i not in out.delivered_before]
        out.result.failed += _finish(
            conn, owner, nobody, state="failed", last_error="no_reachable_device"
        )
    return out


def _run_checks(
    db: Session, reminders: Sequence[Reminder], checks: Mapping[str, Sequence[RelevanceCheck]]
) -> dict[int, str]:
    by_kind: dict[str, list[Reminder]] = defaultdict(list)
    for reminder in reminders:
        by_kind[reminder.kind].append(reminder)
    reasons: dict[int, str] = {}
    for kind, group in by_kind.items():
        for check in [*checks.get("*", ()), *checks.get(kind, ())]:
            pending = [r for r in group if r.id not in reasons]
            if pending:
                reasons.update(check(db, pending))
    return reasons


def _group_by_value(mapping: Mapping[int, str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for key, value in mapping.items():
        groups[value].append(key)
    return groups


def _devices_done(db: Session, reminder_ids: Sequence[int]) -> dict[int, dict[int, bool]]:
    """For retried reminders: devices that already accepted (True) or refused for good."""
    done: dict[int, dict[int, bool]] = defaultdict(dict)
    if not reminder_ids:
        return done
    rows = db.execute(
        select(Delivery.reminder_id, Delivery.device_id, Delivery.fcm_message_id).where(
            Delivery.reminder_id.in_(reminder_ids),
            (Delivery.fcm_message_id.is_not(None)) | Delivery.permanent.is_(True),
        )
    )
    for reminder_id, device_id, message_id in rows:
        if device_id is not None:
            done[reminder_id][device_id] = message_id is not None
    return done


def backoff(attempt: int, config: DispatchConfig, retry_after_s: float | None) -> timedelta:
    """Exponential backoff with "equal jitter", never sooner than the server's Retry-After."""
    ceiling = min(config.backoff_cap, config.backoff_base * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + ceiling / 2 * random.random()
    if retry_after_s is not None:
        delay = max(delay, timedelta(seconds=retry_after_s))
    return delay


def record(
    engine: Engine,
    owner: str,
    now: datetime,
    prepared: Prepared,
    results: Sequence[Result],
    config: DispatchConfig,
) -> BatchResult:
    """Write the deliveries, deactivate dead tokens, and move each reminder on."""
    out = BatchResult()
    by_reminder: dict[int, list[Result]] = defaultdict(list)
    for res in results:
        by_reminder[res.push.reminder_id].append(res)
    rows = [
        {
            "reminder_id": r.push.reminder_id,
            "device_id": r.push.device_id,
            "attempt": prepared.attempts[r.push.reminder_id],
            "fcm_message_id": r.message_id,
            "error_code": r.error.code if r.error else None,
            "permanent": bool(r.error and r.error.permanent),
            "at": now,
        }
        for r in results
    ]
    dead = [
        {"d_id": r.push.device_id, "d_token": r.push.token, "d_reason": r.error.code}
        for r in results
        if r.error is not None and r.error.token_invalid
    ]
    sent: list[int] = []
    failed: dict[str, list[int]] = defaultdict(list)
    retries: list[dict[str, Any]] = []
    for reminder_id, group in by_reminder.items():
        ok = [r for r in group if r.ok]
        transient = [r.error for r in group if r.error is not None and not r.error.permanent]
        permanent = [r.error for r in group if r.error is not None and r.error.permanent]
        out.pushes_ok += len(ok)
        out.pushes_failed += len(group) - len(ok)
        for refusal in (*transient, *permanent):
            out.push_errors[refusal.code] = out.push_errors.get(refusal.code, 0) + 1
        if ok and reminder_id not in prepared.delivered_before:
            kind, due_at = prepared.due[reminder_id]
            out.lateness.append((kind, max(0.0, (now - due_at).total_seconds())))
        any_ok = bool(ok) or reminder_id in prepared.delivered_before
        attempt = prepared.attempts[reminder_id]
        if transient and attempt < config.max_attempts:
            wait = backoff(attempt, config, max((e.retry_after_s or 0) for e in transient))
            retries.append(
                {
                    "r_id": reminder_id,
                    "r_next": now + wait,
                    "r_error": f"{transient[0].code}: {transient[0].message}"[:500],
                    "r_sent": now if ok else None,
                }
            )
        elif any_ok:
            sent.append(reminder_id)
        else:
            worst = (transient or permanent)[0]
            assert worst is not None
            failed[f"{worst.code}: {worst.message}"[:500]].append(reminder_id)

    with write_transaction(engine) as conn:
        if rows:
            conn.execute(insert(Delivery), rows)
        for item in dead:
            # Only if the row still holds the token we sent to: a device re-registered
            # with a fresh token meanwhile must stay active.
            out.devices_deactivated += (
                conn.execute(
                    update(Device)
                    .where(
                        Device.id == item["d_id"],
                        Device.fcm_token == item["d_token"],
                        Device.active.is_(True),
                    )
                    .values(active=False, deactivated_reason=item["d_reason"])
                ).rowcount
                or 0
            )
        out.sent += _finish(
            conn, owner, sent, state="sent", sent_at=func.coalesce(Reminder.sent_at, now)
        )
        for error, ids in failed.items():
            out.failed += _finish(conn, owner, ids, state="failed", last_error=error)
        for item in retries:
            out.retrying += (
                conn.execute(
                    update(Reminder)
                    .where(Reminder.id == item["r_id"], _mine(owner))
                    .values(
                        state="pending",
                        next_attempt_at=item["r_next"],
                        last_error=item["r_error"],
                        sent_at=func.coalesce(Reminder.sent_at, item["r_sent"]),
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                ).rowcount
                or 0
            )
    expected = len(sent) + len(retries) + sum(len(ids) for ids in failed.values())
    out.lost_lease += expected - (out.sent + out.retrying + out.failed)
    return out


def dispatch_batch(
    engine: Engine,
    channel: Channel,
    owner: str,
    now: datetime,
    config: DispatchConfig = DispatchConfig(),
) -> BatchResult:
    """Claim one batch, re-check and render it, send it, record the outcome."""
    ids = claim_due(engine, owner, now, config.batch_size, config.lease)
    prepared = prepare(engine, owner, ids, now, config)
    result = prepared.result
    result.claimed = len(ids)
    if prepared.pushes:
        results = channel.send(prepared.pushes)
        result += record(engine, owner, now, prepared, results, config)
    return result


def dispatch_once(
    engine: Engine,
    channel: Channel,
    owner: str,
    now: datetime | None = None,
    config: DispatchConfig = DispatchConfig(),
) -> BatchResult:
    """Sweep the overdue, reap dead leases, then dispatch one batch."""
    at = now or clock_now()
    swept = expire_overdue(engine, at)
    reaped = reap_expired_leases(engine, at)
    result = dispatch_batch(engine, channel, owner, at, config)
    result.expired += swept
    result.leases_reaped += reaped
    return result


def drain(
    engine: Engine,
    channel: Channel,
    owner: str,
    config: DispatchConfig = DispatchConfig(),
    should_stop: Callable[[], bool] = lambda: False,
    max_batches: int = 10_000,
) -> BatchResult:
    """Dispatch batches while full batches keep coming (the worker's job)."""
    total = BatchResult()
    for _ in range(max_batches):
        result = dispatch_once(engine, channel, owner, None, config)
        total += result
        if result.claimed < config.batch_size or should_stop():
            break
    return total
