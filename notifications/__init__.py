"""The delivery engine: turning "tell user U about X at time T" into a delivered push.

What the rest of the code uses: device registration (``notifications.devices``) and the
outbox (``notifications.outbox``: ``enqueue``, ``cancel``, the planner's ``upsert_planned``).
The dispatcher (``notifications.dispatch``) is handed the domain's relevance checks and the
renderer by the worker (``notifications.worker``), the one module that wires the reminder
domain in. Nothing here but the worker imports ``backend.reminders`` or ``backend.services``,
and nothing here imports Flask.
"""

from notifications.devices import register_device, remove_device
from notifications.outbox import cancel, enqueue

__all__ = ["cancel", "enqueue", "register_device", "remove_device"]
