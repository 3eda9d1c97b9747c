"""Turning "tell user U about X at time T" into a delivered push.

The backend uses only this package's small public API (device registration now; enqueue and
cancel with the reminders issue). Nothing here reads Flask request state.
"""

from notifications.devices import Device, register_device, remove_device

__all__ = ["Device", "register_device", "remove_device"]
