"""Devices that can receive pushes: one row per app installation, keyed by its id.

An FCM registration token identifies one app install. The same token showing up under the
same installation for another user (sign-out and sign-in as someone else on the same phone),
or under a new installation id of the same user, moves to the new owner; a token is never held
by two rows. Another user's token under another installation is refused (409): that is not the
same phone, and moving it would silently take that person's reminders away.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.clock import now
from backend.errors import ServiceError
from backend.models.device import PLATFORMS, Device

__all__ = ["PLATFORMS", "Device", "register_device", "remove_device"]


def register_device(
    db: Session,
    user_id: int,
    installation_id: str,
    fcm_token: str,
    platform: str,
    app_version: str | None = None,
    locale: str | None = None,
    notifications_enabled: bool = True,
) -> tuple[Device, bool]:
    """Create or refresh the device; returns (device, created)."""
    at = now()
    holder = db.scalar(select(Device).where(Device.fcm_token == fcm_token))
    device = db.scalar(
        select(Device).where(Device.user_id == user_id, Device.installation_id == installation_id)
    )
    if (
        holder is not None
        and holder.user_id != user_id
        and holder.installation_id != installation_id
    ):
        # A token identifies one app install. Another account's token under another
        # installation id is not a sign-in on the same phone: moving it would silently take
        # that person's reminders away (their phone stops hearing, ours starts).
        raise ServiceError(
            409,
            "This push token is registered to another installation of the app; "
            "register it from that installation.",
            field="fcm_token",
        )
    if holder is not None and holder is not device:
        # The token moved (new owner or reinstall): drop the old holder first so the
        # unique token constraint never sees two rows.
        db.delete(holder)
        db.flush()
    created = device is None
    if device is None:
        device = Device(user_id=user_id, installation_id=installation_id, created_at=at)
        db.add(device)
    device.fcm_token = fcm_token
    device.platform = platform
    device.app_version = app_version
    device.locale = locale
    device.notifications_enabled = notifications_enabled
    device.active = True
    device.deactivated_reason = None
    device.last_seen_at = at
    db.flush()
    return device, created


def remove_device(db: Session, user_id: int, installation_id: str) -> bool:
    device = db.scalar(
        select(Device).where(Device.user_id == user_id, Device.installation_id == installation_id)
    )
    if device is None:
        return False
    db.delete(device)
    db.flush()
    return True
