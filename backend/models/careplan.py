"""A patient's care plan, edited by several people, and the revision kept for every change.

Conditions, goals and activities are small lists that are always read and written with
their plan, so they live in JSON columns. Goals and activities carry server-assigned ids
that stay the same across edits, so a phone can tick off "activity X" in a later version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.clock import now
from backend.db import Base, UTCDateTime

PLAN_STATUSES = ("active", "completed")
CONDITION_STATUSES = ("active", "resolved")
GOAL_STATUSES = ("proposed", "active", "achieved", "cancelled")
ACTIVITY_STATUSES = ("open", "done", "cancelled")
RESPONSIBLE_KINDS = ("patient", "caregiver", "care_team_member")
# What a PATCH may change, in the order a revision lists them.
EDITABLE = ("title", "instructions", "conditions", "goals", "activities", "status")
_WITH_IDS = ("goals", "activities")


def new_item_id() -> str:
    return uuid.uuid4().hex


class CarePlan(Base):
    """One plan of a patient. At most one is active; completed plans are kept read-only."""

    __tablename__ = "care_plans"
    __table_args__ = (
        # The "one active plan" rule held by the database, so two plans created at the same
        # moment cannot both end up active.
        Index(
            "uq_care_plans_active_patient_id",
            "patient_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    goals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    activities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Bumped by every change; the UPDATE is conditional on the old value (see __mapper_args__)
    # so of two writers who read the same version only the first one wins.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EDITABLE}

    def apply(self, changes: dict[str, Any], by_user_id: int) -> CarePlanRevision | None:
        """Apply a partial update; returns the revision, or None when nothing changed."""
        changes = {k: with_item_ids(v) if k in _WITH_IDS else v for k, v in changes.items()}
        before = self.snapshot()
        diff = {
            name: {"from": before[name], "to": value}
            for name, value in changes.items()
            if name in EDITABLE and before[name] != value
        }
        if not diff:
            return None
        for name in diff:
            setattr(self, name, changes[name])
        if diff.get("status", {}).get("to") == "completed":
            self.completed_at = now()
        return self._revise(diff, by_user_id)

    def complete(self, by_user_id: int) -> CarePlanRevision | None:
        return self.apply({"status": "completed"}, by_user_id)

    def record_creation(self, by_user_id: int) -> CarePlanRevision:
        """The first revision: every field from nothing to its value."""
        self.goals = with_item_ids(self.goals or [])
        self.activities = with_item_ids(self.activities or [])
        self.version = 1
        self.created_at = self.updated_at = now()
        diff = {name: {"from": None, "to": value} for name, value in self.snapshot().items()}
        return CarePlanRevision(
            plan=self, version=1, changed_by_user_id=by_user_id, at=self.created_at, changes=diff
        )

    def _revise(self, diff: dict[str, Any], by_user_id: int) -> CarePlanRevision:
        self.version += 1
        self.updated_at = now()
        return CarePlanRevision(
            plan=self,
            version=self.version,
            changed_by_user_id=by_user_id,
            at=self.updated_at,
            changes=diff,
        )


def with_item_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items sent with an id keep it; new items get one (the API refuses ids it never gave,
    see ``unknown_item_ids``)."""
    return [{**item, "id": item.get("id") or new_item_id()} for item in items]


def unknown_item_ids(current: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    known = {item["id"] for item in current}
    return [item["id"] for item in wanted if item.get("id") and item["id"] not in known]


class CarePlanRevision(Base):
    """Who changed what in a plan, and when: ``changes`` is ``{field: {"from", "to"}}``."""

    __tablename__ = "care_plan_revisions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("care_plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    changed_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    plan: Mapped[CarePlan] = relationship()
