"""``/me/devices``: the phones that receive this person's pushes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from backend import db
from backend.api.blueprint import Blueprint
from backend.api.common import BaseSchema, Choice, Instant, Language, Pattern, error_responses
from backend.auth import current_user
from backend.errors import fail
from backend.models import Device
from notifications import register_device, remove_device
from notifications.devices import PLATFORMS

blp = Blueprint("devices", __name__, url_prefix="/me/devices", description="Push devices")

_INSTALLATION = r"^[A-Za-z0-9._:-]{8,100}$"


class DeviceSchema(BaseSchema):
    installation_id = ma.fields.String(dump_only=True)
    fcm_token = ma.fields.String(
        required=True,
        load_only=True,
        validate=[
            ma.validate.Length(min=20, max=4096),
            Pattern(r"^[A-Za-z0-9_:\-.]+$", error="Not an FCM registration token."),
        ],
    )
    platform = ma.fields.String(required=True, validate=Choice("Platform", PLATFORMS))
    app_version = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=40))
    locale = Language(allow_none=True)
    notifications_enabled = ma.fields.Boolean(
        required=True,
        metadata={"description": "Whether the person allowed notifications on this device"},
    )
    active = ma.fields.Boolean(dump_only=True)
    created_at = Instant(dump_only=True)
    last_seen_at = Instant(dump_only=True)


class InstallationPath(ma.Schema):
    installation_id = ma.fields.String(validate=Pattern(_INSTALLATION))


@blp.route("")
class Devices(MethodView):
    @blp.response(200, DeviceSchema(many=True))
    def get(self) -> list[Device]:
        """Your registered devices"""
        stmt = select(Device).where(Device.user_id == current_user().id).order_by(Device.id)
        return list(db.session.scalars(stmt))


@blp.route(
    "/<installation_id>",
    parameters=[
        {
            "in": "path",
            "name": "installation_id",
            "schema": {"type": "string", "pattern": _INSTALLATION},
        }
    ],
)
class DeviceByInstallation(MethodView):
    @blp.arguments(
        DeviceSchema,
        example={
            "fcm_token": "dGhpcy1pcy1hbi1mY20tdG9rZW4tZXhhbXBsZQ",
            "platform": "android",
            "notifications_enabled": True,
            "locale": "es-MX",
            "app_version": "2.4.0",
        },
    )
    @blp.response(200, DeviceSchema)
    @error_responses(blp, 409)
    def put(self, data: dict[str, Any], installation_id: str) -> Device:
        """Register or refresh this installation's push token (call at every app start)"""
        _check_installation_id(installation_id)
        device, _created = register_device(db.session(), current_user().id, installation_id, **data)
        return device

    @blp.response(204)
    @error_responses(blp, 404, 422)
    def delete(self, installation_id: str) -> None:
        """Stop pushes to this installation (sign-out)"""
        _check_installation_id(installation_id)
        if not remove_device(db.session(), current_user().id, installation_id):
            fail(404, "No such device.")


def _check_installation_id(value: str) -> None:
    try:
        InstallationPath().load({"installation_id": value})
    except ma.ValidationError as exc:
        fail(422, "Invalid installation id.", errors={"path": exc.messages})
