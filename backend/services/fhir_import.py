"""Importing a FHIR R4 Bundle, idempotently: each resource we bring in is linked by its source
identity (``fhir_links``: patient, kind, source system + id -> our row, with a digest of
what was imported). A resource seen before with the same digest is ``unchanged`` and
nothing is written; a changed one updates our row through the usual services (re-plans
included); a new one creates it. What cannot be brought in is ``refused`` with the field
and the reason. The reading of the Bundle is ``backend.fhir.bundles``.

* Patients: into the patient of the route; from the operator's command, matched by any of
  their identifiers already linked, else created as a managed patient of the importing user.
* Medicines: only an active MedicationRequest creates one; a later status (stopped,
  on-hold) updates the medicine it made.
* Appointments: a booked one ahead creates one; later changes reschedule, edit or cancel it.
* Care plans and conditions: the active CarePlans' goals and activities and the active
  Conditions go into the patient's active care plan (started if there is none); items the
  plan had before are kept, imported ones keep ids derived from their source.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from backend.access import Action, PatientAccess, record_access, resolve
from backend.clock import now
from backend.errors import ServiceError, fail
from backend.fhir import bundles
from backend.fhir.bundles import Incoming, Parsed, PatientIn
from backend.models import CaregiverGrant, FhirLink, Medication, Patient, User
from backend.models.appointment import Appointment
from backend.services import appointments as appointment_rules
from backend.services.careplans import active_plan, start_plan
from backend.services.medications import add_medication, update_medication

IMPORT_ACTION = "import_fhir"


class ImportStatus(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass
class Outcome:
    resource: str
    status: ImportStatus
    record: str | None = None
    field: str | None = None
    reason: str | None = None


@dataclass
class Report:
    """What one import did for one patient."""

    patient_id: int | None
    patient: str  # created | matched | refused
    outcomes: list[Outcome] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        found = dict.fromkeys([s.value for s in ImportStatus], 0)
        for outcome in self.outcomes:
            found[outcome.status] += 1
        return found


def read(document: Any) -> Parsed:
    try:
        return bundles.parse(document)
    except bundles.BundleError as exc:
        fail(422, str(exc))


def import_into(session: Session, document: Any, user: User, patient_id: int) -> Report:
    """The route: everything in the bundle is about the patient; resources of a second
    patient in the same bundle are refused. What the importer may not manage is refused."""
    access = _importer(user, patient_id)
    parsed = read(document)
    primary = next(iter(parsed.patients), None)
    report = Report(access.patient.id, "matched", ignored=parsed.ignored)
    if primary is not None:
        _link_identifiers(session, access.patient, parsed.patients[primary])
    mine = []
    for item in parsed.items:
        if item.patient_key not in (primary, None):
            report.outcomes.append(_refused(item, "subject", "about another patient"))
        else:
            mine.append(item)
    _import_items(session, access.patient, access.user, mine, report, access.allows)
    return report


def _importer(user: User, patient_id: int) -> PatientAccess:
    """Whoever may manage at least one kind a bundle brings in (:data:`_NEEDS`) may import;
    each resource of a kind they may not manage is refused in the report. One access-log
    entry per import, refused ones included."""
    access = resolve(user, patient_id)
    if access is None:
        fail(404, "No such patient.")
    record_access(access, IMPORT_ACTION)
    if not any(access.allows(action) for action in _NEEDS.values()):
        fail(
            403,
            "You may see this patient but not manage their medicines, appointments or care "
            "plan: there is nothing you may import.",
        )
    return access


def import_as_operator(
    session: Session, document: Any, by: User, time_zone: str = "UTC"
) -> list[Report]:
    """The operator's command: one report per patient in the bundle."""
    parsed = read(document)
    reports: list[Report] = []
    for key, incoming in parsed.patients.items():
        patient, status = _match_or_create(session, incoming, by, time_zone)
        report = Report(patient.id, status, ignored=parsed.ignored if not reports else {})
        items = [i for i in parsed.items if i.patient_key == key]
        _import_items(session, patient, by, items, report, lambda _: True)
        reports.append(report)
    orphans = [i for i in parsed.items if i.patient_key is None]
    if orphans:
        report = Report(None, "refused", ignored={} if reports else parsed.ignored)
        report.outcomes = [_refused(i, "subject", "no patient to bring it in for") for i in orphans]
        reports.append(report)
    return reports


def _refused(item: Incoming, path: str, reason: str) -> Outcome:
    return Outcome(item.label, ImportStatus.REFUSED, field=path or None, reason=reason)


def _problems(item: Incoming) -> Outcome:
    path, _ = item.problems[0]
    reason = "; ".join(f"{p or item.resource_type}: {r}" for p, r in item.problems)
    return Outcome(item.label, ImportStatus.REFUSED, field=path or None, reason=reason[:1000])


def _match_or_create(
    session: Session, incoming: PatientIn, by: User, time_zone: str
) -> tuple[Patient, str]:
    found = session.scalar(
        select(FhirLink.patient_id)
        .where(
            FhirLink.kind == "patient",
            tuple_(FhirLink.source_system, FhirLink.source_id).in_(
                [(system[:300], value[:300]) for system, value in incoming.identifiers]
            ),
        )
        .order_by(FhirLink.id)
        .limit(1)
    )
    if found is not None:
        patient = session.get(Patient, found)
        assert patient is not None
        _link_identifiers(session, patient, incoming)
        return patient, "matched"
    patient = Patient(
        display_name=incoming.display_name,
        birth_date=incoming.birth_date,
        language=incoming.language,
        time_zone=time_zone,
        created_by_user_id=by.id,
    )
    session.add(patient)
    session.flush()
    session.add(
        CaregiverGrant(
            patient_id=patient.id,
            caregiver_user_id=by.id,
            relationship="other",
            permissions=[],
            is_managing=True,
            granted_by_user_id=by.id,
        )
    )
    _link_identifiers(session, patient, incoming)
    return patient, "created"


def _link_identifiers(session: Session, patient: Patient, incoming: PatientIn) -> None:
    """Link the bundle's patient identifiers to ``patient``, except those another patient
    already holds: a bundle sent for one record must not claim another person's MRN (a later
    operator import would then match that person's data to this record). Identifiers are
    compared as stored (cut to the column's 300 characters), so a re-import finds them."""
    wanted = {(system[:300], value[:300]) for system, value in incoming.identifiers}
    if not wanted:
        return
    held = session.execute(
        select(FhirLink.source_system, FhirLink.source_id).where(
            FhirLink.kind == "patient",
            tuple_(FhirLink.source_system, FhirLink.source_id).in_(wanted),
        )
    )
    known = {(system, value) for system, value in held}
    for source in sorted(wanted - known):
        session.add(_link(patient.id, "patient", source, patient.id, ""))
    session.flush()


def _link(
    patient_id: int, kind: str, source: tuple[str, str], target: int, digest: str
) -> FhirLink:
    at = now()
    return FhirLink(
        patient_id=patient_id,
        kind=kind,
        source_system=source[0][:300],
        source_id=source[1][:300],
        target_id=target,
        content_hash=digest,
        created_at=at,
        updated_at=at,
    )


def _links(
    session: Session, patient_id: int, items: Iterable[Incoming]
) -> dict[tuple[str, str, str], FhirLink]:
    wanted = {(i.kind, *i.source) for i in items}
    if not wanted:
        return {}
    rows = session.scalars(
        select(FhirLink).where(
            FhirLink.patient_id == patient_id,
            tuple_(FhirLink.kind, FhirLink.source_system, FhirLink.source_id).in_(
                [(k, s[:300], v[:300]) for k, s, v in wanted]
            ),
        )
    )
    return {(r.kind, r.source_system, r.source_id): r for r in rows}


_NEEDS = {
    "medication": Action.MANAGE_MEDICATIONS,
    "appointment": Action.MANAGE_APPOINTMENTS,
    "care_plan": Action.EDIT_CARE_PLAN,
    "condition": Action.EDIT_CARE_PLAN,
}


def _import_items(
    session: Session,
    patient: Patient,
    by: User,
    items: list[Incoming],
    report: Report,
    allows: Any,
) -> None:
    links = _links(session, patient.id, items)
    plan_items: list[tuple[Incoming, FhirLink | None]] = []
    for item in items:
        link = links.get((item.kind, item.source[0][:300], item.source[1][:300]))
        action = _NEEDS[item.kind]
        if not allows(action):
            report.outcomes.append(
                _refused(item, "", f"you may not {action.value.replace('_', ' ')}")
            )
        elif link is None and item.kind == "medication" and _not_taken(item):
            reason = f"status {item.status}: only an active MedicationRequest becomes a medicine"
            report.outcomes.append(_refused(item, "status", reason))
        elif item.problems and not _stopping(item, link):
            report.outcomes.append(_problems(item))
        elif link is not None and link.content_hash == item.digest:
            report.outcomes.append(
                Outcome(item.label, ImportStatus.UNCHANGED, f"{item.kind} {link.target_id}")
            )
        elif item.kind in ("care_plan", "condition"):
            plan_items.append((item, link))
        else:
            report.outcomes.append(_one(session, patient, by, item, link))
    if plan_items:
        report.outcomes.extend(_care_plan(session, patient, by, plan_items))


def _not_taken(item: Incoming) -> bool:
    """A request that is no longer active: its status is the reason, whatever else it lacks."""
    return item.status is not None and item.status != "active"


def _stopping(item: Incoming, link: FhirLink | None) -> bool:
    """A medicine we brought in whose request is no longer active: it stops (or pauses) even
    when the request now lacks what a new medicine would need (Synthea drops the dosage)."""
    return link is not None and item.kind == "medication" and _not_taken(item) and bool(item.fields)


def _one(
    session: Session, patient: Patient, by: User, item: Incoming, link: FhirLink | None
) -> Outcome:
    write = _medication if item.kind == "medication" else _appointment
    try:
        with session.begin_nested():
            target = write(session, patient, by, item, link)
    except ServiceError as exc:
        return _refused(item, exc.field or "", exc.message)
    if link is None:
        session.add(_link(patient.id, item.kind, item.source, target, item.digest))
        return Outcome(item.label, ImportStatus.CREATED, f"{item.kind} {target}")
    link.content_hash, link.updated_at = item.digest, now()
    return Outcome(item.label, ImportStatus.UPDATED, f"{item.kind} {target}")


def _medication(
    session: Session, patient: Patient, by: User, item: Incoming, link: FhirLink | None
) -> int:
    fields = dict(item.fields)
    if link is None:
        if fields["status"] != "active":
            fail(
                422,
                f"status {fields['status']}: only an active MedicationRequest becomes a medicine",
                field="status",
            )
        return add_medication(session, patient, by, fields).id
    med = session.get(Medication, link.target_id)
    assert med is not None
    if item.problems:  # see _stopping: only the status changes
        update_medication(session, med, {"status": fields["status"]})
        return med.id
    fields.pop("start_date", None)
    fields.setdefault("timing", None)
    update_medication(session, med, fields)
    return med.id


def _instant(value: str, path: str) -> datetime:
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        fail(422, "not an instant", field=path)
    if found.tzinfo is None:
        fail(422, "an instant needs its offset", field=path)
    return found


def _appointment(
    session: Session, patient: Patient, by: User, item: Incoming, link: FhirLink | None
) -> int:
    fields = dict(item.fields)
    start, end = _instant(fields.pop("start"), "start"), _instant(fields.pop("end"), "end")
    status = fields.pop("status")
    if end <= start:
        fail(422, "ends before it starts", field="end")
    if link is None:
        if status != "booked" or start <= now():
            fail(
                422,
                "only booked appointments ahead are brought in",
                field="start" if status == "booked" else "status",
            )
        return appointment_rules.book(
            session, patient, by, {**fields, "start_at": start, "end_at": end}
        ).id
    row = session.get(Appointment, link.target_id)
    assert row is not None
    if status == "cancelled":
        if row.is_booked:
            appointment_rules.cancel(session, row, by, "cancelled in the source record")
        return row.id
    if (row.start_at, row.end_at) != (start, end) and row.is_booked:
        appointment_rules.reschedule(session, row, by, start, end)
    changes = {k: v for k, v in fields.items() if k != "type"}
    if status != "booked":
        changes["status"] = status
    appointment_rules.edit(session, row, by, changes)
    return row.id


def _care_plan(
    session: Session, patient: Patient, by: User, found: list[tuple[Incoming, FhirLink | None]]
) -> list[Outcome]:
    """The new or changed care plans and conditions, into the patient's active plan."""
    plans = [i for i, _ in found if i.kind == "care_plan"]
    goals = [g for p in plans for g in p.fields["goals"]]
    activities = [a for p in plans for a in p.fields["activities"]]
    conditions = _unique([i.fields["condition"] for i, _ in found if i.kind == "condition"])
    plan = active_plan(session, patient.id)
    if plan is None:
        title = "; ".join(p.fields["title"] for p in plans)[:200] or "Care plan"
        instructions = "\n\n".join(
            p.fields["instructions"] for p in plans if p.fields["instructions"]
        )
        data = {
            "title": title,
            "instructions": instructions,
            "conditions": conditions,
            "goals": goals,
            "activities": activities,
        }
        plan = start_plan(session, patient.id, data, by.id)
    else:
        revision = plan.apply(
            {
                "conditions": _merged_conditions(plan.conditions, conditions),
                "goals": _merged(plan.goals, goals),
                "activities": _merged(plan.activities, activities),
            },
            by.id,
        )
        if revision is not None:
            session.add(revision)
        session.flush()
    outcomes = []
    for item, link in found:
        if link is None:
            session.add(_link(patient.id, item.kind, item.source, plan.id, item.digest))
            outcomes.append(Outcome(item.label, ImportStatus.CREATED, f"care_plan {plan.id}"))
        else:
            link.content_hash, link.target_id, link.updated_at = item.digest, plan.id, now()
            outcomes.append(Outcome(item.label, ImportStatus.UPDATED, f"care_plan {plan.id}"))
    return outcomes


def _merged(current: list[dict[str, Any]], imported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's items with the imported ones replacing those with their id, new ones last."""
    by_id = {i["id"]: i for i in imported}
    kept = [by_id.pop(i["id"], i) for i in current]
    return kept + list(by_id.values())


def _condition_key(condition: dict[str, Any]) -> tuple[str, str, str]:
    code = condition.get("code") or {}
    return condition["text"], code.get("system", ""), code.get("code", "")


def _unique(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c in conditions:
        seen.setdefault(_condition_key(c), c)
    return list(seen.values())


def _merged_conditions(
    current: list[dict[str, Any]], imported: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    keys = {_condition_key(c) for c in imported}
    return [c for c in current if _condition_key(c) not in keys] + imported


__all__ = [
    "IMPORT_ACTION",
    "ImportStatus",
    "Outcome",
    "Report",
    "import_as_operator",
    "import_into",
]
