"""Turning "tell user U about X at time T" into a delivered push.

The backend uses only this package's small public API: device registration, and
``enqueue`` / ``cancel`` on the outbox (see ``notifications.dispatch`` for the relevance
checks and the renderer it can install). Nothing here reads Flask request state.
"""

from notifications.devices import Device, register_device, remove_device
from notifications.outbox import Delivery, Reminder, cancel, enqueue

__all__ = [
    "Delivery",
    "Device",
    "Reminder",
    "cancel",
    "enqueue",
    "register_device",
    "remove_device",
]
