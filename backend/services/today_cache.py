"""Reading and writing the today view's cache (``backend/models/today_cache``): which of the
wanted (patient, day) pairs are still good, and storing the ones just computed.

The cache is written by the request that missed, in its own transaction (the one that also
writes the access log), so a GET that computes a day pays one multi-row upsert; a hit is a
single SELECT of the rendered sections for every person the reader cares for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Load, Session

from backend.access import cared_for_rows
from backend.models import CaregiverGrant, Patient, SignedOutSession, TodayCacheRow, User
from backend.reminders.device_health import Reach, classify, reach_subquery

# A section name -> its JSON text, as the API renders it.
Sections = dict[str, str]
SECTIONS = (
    "doses",
    "extra_doses",
    "prn",
    "appointments",
    "activities",
    "checkins",
    "checkins_for_caregivers",
)
# Even a day whose statuses will not change for hours is recomputed after this: a belt to
# the braces of the version and of the computed boundaries (one recomputation per patient
# and hour with views costs nothing that matters).
LONGEST = timedelta(hours=1)
# Rows for days this long ago are pruned by the worker (nobody opens last week's "today").
KEEP_DAYS = 2


@dataclass(frozen=True)
class Wanted:
    patient: Patient
    day: date


@dataclass
class Lookup:
    """One read for a reader: the reader's user row (None if it is gone) and whether this
    sign-in was signed out; whom they care for (each patient with the grant, or None for
    their own record); each patient's current version (read in the same statement, not from
    a ``Patient`` a long-lived session may hold from before a change); the cached rows of the
    asked days, as (version, valid until, sections) by (patient id, day); and whether the
    reader's phones can receive reminders."""

    user: User | None
    signed_out: bool
    cared_for: list[tuple[Patient, CaregiverGrant | None]]
    versions: dict[int, int]
    rows: dict[tuple[int, date], tuple[int, datetime, Sections]]
    reach: Reach

    def good(self, wanted: Sequence[Wanted], at: datetime) -> dict[int, Sections]:
        """The wanted days' sections by patient id where the row is good: computed at the
        current version, and no status in it has changed since."""
        found = {}
        for w in wanted:
            row = self.rows.get((w.patient.id, w.day))
            if row is not None and row[0] == self.versions[w.patient.id] and at < row[1]:
                found[w.patient.id] = row[2]
        return found


_CARED = cared_for_rows()
_REACH = reach_subquery()
# Only what a hit needs of each entity (the sign-in, the access policy, the answer's head):
# every column read costs the driver an object per request. A day computed afresh loads its
# patients whole first (:func:`load_patients`).
_ONLY = (
    Load(User).load_only(User.id, User.firebase_uid, User.email, User.last_seen_at),
    Load(Patient).load_only(Patient.id, Patient.user_id, Patient.display_name, Patient.time_zone),
    Load(CaregiverGrant).load_only(
        CaregiverGrant.id,
        CaregiverGrant.relationship,
        CaregiverGrant.permissions,
        CaregiverGrant.is_managing,
    ),
)
# Built once (the hottest read there is): the signed-in user, their phones, whom they care
# for, each patient's version, and their rows for the asked days -- one statement (see
# backend.auth.FINDS_OWN_USER). The user is the driving row, so a reader who cares for nobody
# and has no phone still gets one row.
_READ = (
    select(
        User,
        SignedOutSession.of_sign_in(User.id),
        *_REACH.c,
        Patient,
        CaregiverGrant,
        Patient.today_version,
        TodayCacheRow.day,
        TodayCacheRow.version,
        TodayCacheRow.valid_until,
        *(getattr(TodayCacheRow, name) for name in SECTIONS),
    )
    .select_from(User)
    .join(_REACH, true())
    .outerjoin(_CARED, true())
    .outerjoin(Patient, Patient.id == _CARED.c.patient_id)
    .outerjoin(CaregiverGrant, CaregiverGrant.id == _CARED.c.grant_id)
    .outerjoin(
        TodayCacheRow,
        and_(
            TodayCacheRow.patient_id == Patient.id,
            TodayCacheRow.day.in_(bindparam("days", expanding=True)),
        ),
    )
    .where(User.id == bindparam("user_id"), User.firebase_uid == bindparam("uid"))
    .options(*_ONLY)
)


def read(
    db: Session, reader: tuple[int, str, int | None], days: Sequence[date], at: datetime
) -> Lookup:
    """One SELECT: the user of this sign-in -- ``reader`` is (id, Firebase uid, the sign-in's
    ``auth_time``) -- whom they care for at ``at``, with their versions and cached rows for
    ``days`` (each patient's "today" is one of them), and their phones."""
    user_id, uid, auth_time = reader
    params = {
        "user_id": user_id,
        "uid": uid,
        "auth_time": auth_time,
        "at": at,
        "days": sorted(set(days)),
    }
    lookup = Lookup(None, False, [], {}, {}, Reach(False, "no_device"))
    seen: set[tuple[int, int | None]] = set()
    for row in db.execute(_READ, params):
        user, signed_out, *counts = row[:6]
        patient, grant, current, day, version, valid_until, *sections = row[6:]
        lookup.user, lookup.signed_out, lookup.reach = user, signed_out, classify(counts, at)
        if patient is None:
            continue
        pair = (patient.id, None if grant is None else grant.id)
        if pair not in seen:  # one row per cached day
            seen.add(pair)
            lookup.cared_for.append((patient, grant))
        lookup.versions[patient.id] = current
        if day is not None:
            lookup.rows[(patient.id, day)] = (
                version,
                valid_until,
                dict(zip(SECTIONS, sections, strict=True)),
            )
    return lookup


def store(
    db: Session,
    computed: Sequence[tuple[Wanted, int, datetime, Sections]],
    at: datetime,
) -> None:
    """Insert or replace the rows for these days -- (day, the patient's version read before
    the day was computed, the next change, the sections) -- computed at ``at``; a row computed
    at a newer version is kept. Rows go in patient order (two writers lock shared rows in the
    same order)."""
    if not computed:
        return
    rows: list[dict[str, Any]] = sorted(
        (
            {
                "patient_id": w.patient.id,
                "day": w.day,
                "version": version,
                "valid_until": min(changes, at + LONGEST),
                "computed_at": at,
                **{name: sections[name] for name in SECTIONS},
            }
            for w, version, changes, sections in computed
        ),
        key=lambda row: row["patient_id"],
    )
    dialect = db.get_bind().dialect.name
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(TodayCacheRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["patient_id", "day"],
        set_={
            name: stmt.excluded[name]
            for name in ("version", "valid_until", "computed_at", *SECTIONS)
        },
        where=TodayCacheRow.version <= stmt.excluded.version,
    )
    db.execute(stmt, rows)


def prune(db: Session, today: date) -> int:
    """Drop the rows of days long gone; returns how many."""
    result = db.execute(
        delete(TodayCacheRow).where(TodayCacheRow.day < today - timedelta(days=KEEP_DAYS))
    )
    return int(getattr(result, "rowcount", 0) or 0)
