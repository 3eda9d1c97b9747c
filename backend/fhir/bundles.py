"""Reading a FHIR R4 Bundle (transaction, batch or collection; a lone resource counts as a
collection of one) into what we can bring in. Pure: no Flask, no database.

Each resource of a kind we bring in is validated with fhir.resources (R4B models) first; an
invalid one is refused with the path of the first error. Then, field by field:

* ``Patient``: name, birth date, language, and its identifiers (for matching later).
* ``MedicationRequest`` -> a medicine: the name and code from ``medicationCodeableConcept``
  (or the Medication it references), ``dosageInstruction[0].timing`` kept exactly as given
  after the schedule engine accepted it, ``asNeeded[x]``, the dose from ``doseQuantity``, a
  PRN limit from ``maxDosePerPeriod`` per day. What we cannot represent is refused with its
  field, never dropped or approximated: a second dosage (tapers), a Timing the engine
  refuses, dose ranges and rates, other dose limits, no schedule and not as-needed.
* ``Appointment``: booked / arrived / checked-in -> booked, fulfilled -> completed,
  cancelled, noshow; start and end required; an in-person visit needs a Location.
* ``CarePlan`` (active): title from ``title`` or its categories, ``description``, its
  activities (``detail``) and the Goals it references; ``Condition`` (active): into the
  care plan.

Every resource is known by its source identity (``source_of``): its absolute fullUrl, else
``<Type>/<id>``, else a digest of its content; a patient also by each of its business
identifiers (system + value).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from backend.schedule import TimingError, parse_timing

KINDS = {
    "Patient": "patient",
    "MedicationRequest": "medication",
    "Appointment": "appointment",
    "CarePlan": "care_plan",
    "Condition": "condition",
}
# Read to complete the kinds above (a CarePlan's goals, a request's Medication).
HELPERS = ("Goal", "Medication")
BUNDLE_TYPES = ("transaction", "batch", "collection")

Json = dict[str, Any]


class BundleError(ValueError):
    """The document as a whole cannot be read (not a Bundle or resource, a bundle type we do
    not take)."""


@dataclass
class Incoming:
    """One resource of a kind we bring in, read: our fields, or the reasons it is refused."""

    resource_type: str
    kind: str
    source: tuple[str, str]
    label: str
    digest: str
    patient_key: str | None
    fields: Json = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    status: str | None = None  # the source's own status code

    def refuse(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))


@dataclass
class PatientIn:
    key: str
    source: tuple[str, str]
    identifiers: list[tuple[str, str]]
    display_name: str
    birth_date: date | None = None
    language: str = "en"
    resource: Json | None = None


@dataclass
class Parsed:
    patients: dict[str, PatientIn]
    items: list[Incoming]
    ignored: dict[str, int]


def _validate(resource: Json) -> tuple[str, str] | None:
    # Imported here, not at module level: the models package is large and only the importer
    # and the tests need it.
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"] if p != "__root__")
        return path, first["msg"][:300]
    except (KeyError, TypeError, ValueError) as exc:
        return "", str(exc)[:300]
    return None


# Controls (line breaks included) and bidirectional overrides: a name or title is one line
# that shows as what it is, as the API's own fields require (backend/api/common.PLAIN_TEXT).
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\s]+")


def plain(value: Any, max_len: int) -> str:
    """A short text as one clean line, at most ``max_len`` characters."""
    return _UNSAFE.sub(" ", str(value)).strip()[:max_len].strip()


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def entries(document: Any) -> list[tuple[str | None, Json]]:
    """(fullUrl, resource) of each entry; a lone resource is a collection of one."""
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise BundleError("Not a FHIR resource: no resourceType.")
    if document["resourceType"] != "Bundle":
        return [(None, document)]
    if document.get("type") not in BUNDLE_TYPES:
        raise BundleError(
            f"Bundle type {document.get('type')!r}: we take {', '.join(BUNDLE_TYPES)}."
        )
    found = []
    for entry in document.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            full_url = entry.get("fullUrl")
            found.append((full_url if isinstance(full_url, str) else None, resource))
    return found


def source_of(full_url: str | None, resource: Json) -> tuple[str, str]:
    """A resource's identity at its source: its fullUrl when the bundle gives an absolute one
    (``urn:uuid:…`` or the server's URL), else ``<Type>/<id>``. Not its business identifier:
    those repeat in practice (all 40 HL7 MedicationRequest examples carry the same one)."""
    if full_url and (full_url.startswith("urn:") or "://" in full_url):
        return "fullUrl", full_url
    if isinstance(resource.get("id"), str) and resource["id"]:
        return "reference", f"{resource['resourceType']}/{resource['id']}"
    # No identity at all: its content is (the same resource again is the same; a changed one
    # is a new one).
    return "digest", f"{resource['resourceType']}/{_digest(resource)}"


class _Index:
    """Resolves references inside the bundle: by fullUrl and by ``Type/id``."""

    def __init__(self, found: list[tuple[str | None, Json]]) -> None:
        self.by_ref: dict[str, Json] = {}
        for full_url, resource in found:
            if full_url:
                self.by_ref[full_url] = resource
            if resource.get("id"):
                self.by_ref[f"{resource['resourceType']}/{resource['id']}"] = resource

    def get(self, reference: Any, within: Json | None = None) -> Json | None:
        """The resource a reference points at: in the bundle, or contained in ``within``."""
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        ref = reference["reference"]
        if ref.startswith("#") and within is not None:
            for contained in within.get("contained") or []:
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    return contained
            return None
        return self.by_ref.get(ref) or self.by_ref.get("/".join(ref.split("/")[-2:]))


def parse(document: Any) -> Parsed:
    found = entries(document)
    index = _Index(found)
    patients: dict[str, PatientIn] = {}
    keys: dict[int, str] = {}
    ignored: dict[str, int] = {}
    for full_url, resource in found:
        if resource["resourceType"] == "Patient":
            if _validate(resource) is not None:
                ignored["Patient (not valid FHIR)"] = ignored.get("Patient (not valid FHIR)", 0) + 1
                continue
            p = _patient(full_url, resource)
            patients[p.key] = p
            keys[id(resource)] = p.key
    items: list[Incoming] = []
    for full_url, resource in found:
        rtype = resource["resourceType"]
        if rtype == "Patient":
            continue  # read above
        if rtype not in KINDS:
            if rtype not in HELPERS:
                ignored[rtype] = ignored.get(rtype, 0) + 1
            continue
        items.append(_item(full_url, resource, index, patients, keys))
    return Parsed(patients, items, ignored)


def _patient(full_url: str | None, resource: Json) -> PatientIn:
    source = source_of(full_url, resource)
    identifiers = [
        (str(i["system"]), str(i["value"]))
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("system") and i.get("value")
    ] or [source]
    birth = resource.get("birthDate")
    language = "en"
    for comm in resource.get("communication") or []:
        for coding in (comm.get("language") or {}).get("coding") or []:
            code = str(coding.get("code", ""))[:2].lower()
            if code in ("en", "es"):
                language = code
                break
    return PatientIn(
        key=f"{source[0]}|{source[1]}",
        source=source,
        identifiers=identifiers,
        display_name=_person_name(resource),
        birth_date=date.fromisoformat(birth)
        if isinstance(birth, str) and len(birth) == 10
        else None,
        language=language,
        resource=resource,
    )


def _person_name(resource: Json) -> str:
    for name in resource.get("name") or []:
        if name.get("text"):
            return plain(name["text"], 200)
        parts = [*(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p).strip()
        if text:
            return plain(text, 200)
    return plain(f"Imported patient {resource.get('id', '')}", 200)


def _item(
    full_url: str | None,
    resource: Json,
    index: _Index,
    patients: dict[str, PatientIn],
    keys: dict[int, str],
) -> Incoming:
    rtype = resource["resourceType"]
    item = Incoming(
        resource_type=rtype,
        kind=KINDS[rtype],
        source=source_of(full_url, resource),
        label=f"{rtype}/{resource.get('id') or full_url or '?'}",
        digest=_digest(resource),
        patient_key=None,
    )
    invalid = _validate(resource)
    if invalid is not None:
        item.refuse(*invalid)
        return item
    # Valid from here on: the fields have the types FHIR gives them.
    related = _related(resource, index)
    item.digest = _digest(resource, related)
    item.patient_key = _patient_key(resource, index, patients, keys)
    for other in related:
        invalid = _validate(other)
        if invalid is not None:
            item.refuse(f"{other['resourceType']}.{invalid[0]}", invalid[1])
            return item
    READERS[rtype](item, resource, index)
    return item


def _related(resource: Json, index: _Index) -> list[Json]:
    """What else in the bundle the resource's import depends on (its hash covers them)."""
    if resource["resourceType"] == "CarePlan":
        return [g for g in (index.get(r, resource) for r in resource.get("goal") or []) if g]
    if resource["resourceType"] == "MedicationRequest":
        med = index.get(resource.get("medicationReference"), resource)
        return [med] if med else []
    return []


def _patient_key(
    resource: Json, index: _Index, patients: dict[str, PatientIn], keys: dict[int, str]
) -> str | None:
    subject = resource.get("subject") or resource.get("patient")
    if subject is None and resource["resourceType"] == "Appointment":
        for participant in resource.get("participant") or []:
            actor = participant.get("actor") or {}
            if str(actor.get("reference", "")).split("/")[-2:-1] == ["Patient"]:
                subject = actor
                break
    target = index.get(subject)
    if target is not None and id(target) in keys:
        return keys[id(target)]
    if isinstance(subject, dict) and subject.get("reference"):
        # A patient the bundle does not hold (the HL7 examples): known by the reference.
        ref = str(subject["reference"])
        key = f"reference|{ref}"
        if key not in patients:
            patients[key] = PatientIn(
                key=key,
                source=("reference", ref),
                identifiers=[("reference", ref)],
                display_name=plain(subject.get("display") or f"Imported patient {ref}", 200),
            )
        return key
    return None


def _concept_text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return None


_MED_STATUS = {
    "active": "active",
    "on-hold": "paused",
    "stopped": "stopped",
    "completed": "stopped",
    "cancelled": "stopped",
}
_DOSAGE_REFUSED = {
    "maxDosePerAdministration": "a limit per administration cannot be represented",
    "maxDosePerLifetime": "a lifetime limit cannot be represented",
}


def _medication(item: Incoming, resource: Json, index: _Index) -> None:
    item.status = str(resource.get("status"))
    status = _MED_STATUS.get(item.status)
    if status is None:
        item.refuse("status", f"status {resource.get('status')}: not a medicine being taken")
    concept = resource.get("medicationCodeableConcept")
    if concept is None:
        med = index.get(resource.get("medicationReference"), resource)
        concept = (med or {}).get("code")
        if concept is None and resource.get("medicationReference"):
            concept = {"text": resource["medicationReference"].get("display")}
    name = plain(_concept_text(concept) or "", 200)
    if not name:
        item.refuse("medication[x]", "no name or code for the medicine")
        return
    fields: Json = {"name": name, "code": concept, "status": status or "stopped"}
    requester = (resource.get("requester") or {}).get("display")
    if requester:
        fields["prescriber"] = plain(requester, 200)
    reason = _concept_text((resource.get("reasonCode") or [None])[0])
    if reason:
        fields["reason"] = plain(reason, 300)
    authored = resource.get("authoredOn")
    if isinstance(authored, str) and len(authored) >= 10:
        fields["start_date"] = date.fromisoformat(authored[:10])
    _dosage(item, resource.get("dosageInstruction") or [], fields)
    item.fields = fields


def _dosage(item: Incoming, dosages: list[Json], fields: Json) -> None:
    if len(dosages) > 1:
        item.refuse(
            "dosageInstruction[1]",
            "more than one dosage (a sequence or taper): we keep one schedule per medicine",
        )
        return
    dosage = dosages[0] if dosages else {}
    fields["as_needed"] = bool(dosage.get("asNeededBoolean")) or "asNeededCodeableConcept" in dosage
    timing = dosage.get("timing")
    if timing is not None:
        try:
            parse_timing(timing)
        except TimingError as exc:
            path = f"dosageInstruction[0].timing.{exc.field}".rstrip(".")
            item.refuse(path, exc.message)
        fields["timing"] = timing
    elif not fields["as_needed"]:
        item.refuse("dosageInstruction[0].timing", "no schedule, and not as-needed")
    texts = [dosage.get("text"), dosage.get("patientInstruction")]
    texts += [_concept_text(c) for c in dosage.get("additionalInstruction") or []]
    instructions = "\n".join(str(t) for t in texts if t)
    if instructions:
        fields["instructions"] = instructions[:2000]
    route = _concept_text(dosage.get("route"))
    if route:
        fields["route"] = plain(route, 60)
    for key, reason in _DOSAGE_REFUSED.items():
        if key in dosage:
            item.refuse(f"dosageInstruction[0].{key}", reason)
    _dose_and_rate(item, dosage.get("doseAndRate") or [], fields)
    limit = dosage.get("maxDosePerPeriod")
    if limit is not None:
        per_day = _per_day(limit)
        if per_day is None or not fields["as_needed"]:
            item.refuse(
                "dosageInstruction[0].maxDosePerPeriod",
                "only a whole number of doses per day, for an as-needed medicine",
            )
        else:
            fields["prn_max_per_24h"] = per_day


def _dose_and_rate(item: Incoming, rates: list[Json], fields: Json) -> None:
    for i, rate in enumerate(rates):
        extra = sorted(k for k in rate if k.startswith(("dose", "rate")) and k != "doseQuantity")
        if i > 0 or extra:
            what = extra[0] if extra else "doseQuantity"
            item.refuse(
                f"dosageInstruction[0].doseAndRate[{i}].{what}",
                "only one fixed dose quantity can be represented",
            )
            return
        value = (rate.get("doseQuantity") or {}).get("value")
        if isinstance(value, int | float) and value > 0:
            fields["dose_amount"] = float(value)


def _per_day(ratio: Json) -> int | None:
    num = (ratio.get("numerator") or {}).get("value")
    den = ratio.get("denominator") or {}
    unit = den.get("code") or den.get("unit")
    hours = {"d": 24, "day": 24, "h": 1, "hour": 1}.get(str(unit))
    if not isinstance(num, int | float) or hours is None or den.get("value", 1) * hours != 24:
        return None
    return int(num) if float(num).is_integer() and 0 < num <= 48 else None


_APPOINTMENT_STATUS = {
    "booked": "booked",
    "arrived": "booked",
    "checked-in": "booked",
    "fulfilled": "completed",
    "cancelled": "cancelled",
    "noshow": "no_show",
}


def _appointment(item: Incoming, resource: Json, index: _Index) -> None:
    status = _APPOINTMENT_STATUS.get(resource.get("status", ""))
    if status is None:
        item.refuse(
            "status",
            f"status {resource.get('status')}: only booked (or past) appointments are brought in",
        )
    for key in ("start", "end"):
        if not resource.get(key):
            item.refuse(key, "an appointment needs a start and an end")
    title = (
        resource.get("description")
        or _concept_text((resource.get("serviceType") or [None])[0])
        or _concept_text(resource.get("appointmentType"))
        or "Appointment"
    )
    fields: Json = {"title": plain(title, 200), "status": status or "booked"}
    for participant in resource.get("participant") or []:
        actor = participant.get("actor") or {}
        kind = str(actor.get("reference", "")).split("/")[-2:-1]
        if kind == ["Location"] and actor.get("display"):
            fields.setdefault("location", plain(actor["display"], 500))
        if kind == ["Practitioner"] and actor.get("display"):
            fields.setdefault("provider_name", plain(actor["display"], 200))
    fields["type"] = "in_person"
    if "location" not in fields:
        item.refuse("participant", "an in-person visit needs a place (a Location participant)")
    notes = resource.get("patientInstruction") or resource.get("comment")
    if notes:
        fields["preparation_notes"] = str(notes)[:5000]
    if not item.problems:
        fields["start"], fields["end"] = resource["start"], resource["end"]
    item.fields = fields


_GOAL_STATUS = {
    "proposed": "proposed",
    "planned": "proposed",
    "accepted": "active",
    "active": "active",
    "on-hold": "active",
    "completed": "achieved",
    "cancelled": "cancelled",
    "rejected": "cancelled",
}
_ACTIVITY_STATUS = {"completed": "done", "cancelled": "cancelled", "stopped": "cancelled"}


def item_id(*parts: str) -> str:
    """An imported goal's or activity's id: the same on every import of the same source."""
    return "fhir" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:28]


def _care_plan(item: Incoming, resource: Json, index: _Index) -> None:
    if resource.get("status") != "active":
        item.refuse(
            "status", f"status {resource.get('status')}: only active care plans are brought in"
        )
        return
    title = resource.get("title") or "; ".join(
        t for t in (_concept_text(c) for c in resource.get("category") or []) if t
    )
    key = "|".join(item.source)
    goals = []
    for ref in resource.get("goal") or []:
        goal = index.get(ref, resource)
        if goal is None:
            item.refuse("goal", f"{ref.get('reference')}: not in the bundle")
            continue
        goal_text = _concept_text(goal.get("description")) or "Goal"
        goals.append(
            {
                "id": item_id(key, "goal", str(ref.get("reference"))),
                "description": plain(goal_text, 500),
                "target": {"text": plain(goal_text, 500)},
                "status": _GOAL_STATUS.get(goal.get("lifecycleStatus", ""), "proposed"),
            }
        )
    activities = []
    for i, activity in enumerate(resource.get("activity") or []):
        detail = activity.get("detail") or {}
        text = (
            _concept_text(detail.get("code"))
            or detail.get("description")
            or (activity.get("reference") or {}).get("display")
        )
        if not text:
            item.refuse(f"activity[{i}]", "an activity with nothing to say what it is")
            continue
        performer = next(
            (p.get("display") for p in detail.get("performer") or [] if p.get("display")), None
        )
        responsible = (
            {"kind": "care_team_member", "name": plain(performer, 200)}
            if performer
            else {"kind": "patient"}
        )
        activities.append(
            {
                "id": item_id(key, "activity", str(i)),
                "description": plain(text, 500),
                "responsible": responsible,
                "status": _ACTIVITY_STATUS.get(detail.get("status", ""), "open"),
            }
        )
    item.fields = {
        "title": plain(title or "Care plan", 200),
        "instructions": str(resource.get("description") or "")[:10_000],
        "goals": goals,
        "activities": activities,
        "addresses": [str(r.get("reference")) for r in resource.get("addresses") or []],
    }


_ACTIVE_CLINICAL = ("active", "recurrence", "relapse")


def _condition(item: Incoming, resource: Json, index: _Index) -> None:
    status = ((resource.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code")
    if status not in _ACTIVE_CLINICAL:
        item.refuse(
            "clinicalStatus",
            f"clinical status {status or 'not given'}: only active conditions go into the plan",
        )
        return
    concept = resource.get("code") or {}
    text = _concept_text(concept)
    if not text:
        item.refuse("code", "a condition with no name or code")
        return
    condition: Json = {"text": plain(text, 500), "status": "active"}
    coding = next(
        (c for c in concept.get("coding") or [] if c.get("system") and c.get("code")), None
    )
    if coding is not None:
        condition["code"] = {
            k: plain(coding[k], 200) for k in ("system", "code", "display") if coding.get(k)
        }
    item.fields = {"condition": condition}


READERS = {
    "MedicationRequest": _medication,
    "Appointment": _appointment,
    "CarePlan": _care_plan,
    "Condition": _condition,
}
