"""An answered check-in as a FHIR R4 QuestionnaireResponse. Pure: no database, no Flask.

* ``questionnaire``: the canonical URL of the source Questionnaire for the LOINC screeners
  (PHQ-2 is the first two items of the PHQ-9 Questionnaire); ``urn:care-companion:
  questionnaire:<code>`` for our other built-ins and ``urn:care-companion:organization:<id>:
  questionnaire:<code>`` for an organization's own (codes are unique within an organization
  only, so two organizations' ``HF-DAILY`` stay two questionnaires).
* ``linkId``: the source Questionnaire's for the screeners, else the item's code.
* Answers: ``valueCoding`` (LOINC, ``http://loinc.org``, for the screeners; our urn for
  other options), ``valueBoolean``, ``valueInteger`` (scale), ``valueQuantity`` in UCUM as
  entered (the canonical value stays ours), ``valueDate``, ``valueString``; a blood pressure
  is an item with two sub-items, systolic and diastolic, in mm[Hg].
* The total score of PHQ-9 and GAD-7 goes in the Questionnaire's own total item
  (``valueDecimal``).
* ``author``: the patient, or, for an answer given on their behalf, the care team member
  (Practitioner) or caregiver (RelatedPerson) by our user id; ``source``: who the answers
  came from, the patient unless a caregiver answered.
"""

from __future__ import annotations

from typing import Any, Protocol

from backend.checkins.templates import BP_COMPONENTS, BP_UNIT, UCUM, Item, Template

URN = "urn:care-companion"
USER_SYSTEM = f"{URN}:user"


class Answered(Protocol):
    id: int
    patient_id: int
    answers: dict[str, Any]
    score: int | None
    answered_by_user_id: int
    at: Any


def _urn(template: Template) -> str:
    org = template.key.organization_id
    owner = "" if org is None else f":organization:{org}"
    return f"{URN}{owner}:questionnaire:{template.code}"


def questionnaire_url(template: Template) -> str:
    return template.source_url or _urn(template)


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _answers(template: Template, item: Item, stored: Any) -> list[dict[str, Any]]:
    if item.type in ("choice", "multi_choice"):
        codes = stored if isinstance(stored, list) else [stored]
        found = []
        for code in codes:
            option = item.option(code)
            system = (option and option.system) or f"{_urn(template)}:{item.id}"
            coding = {"system": system, "code": code}
            if option is not None:
                coding["display"] = option.display
            found.append({"valueCoding": coding})
        return found
    if item.type == "boolean":
        return [{"valueBoolean": stored}]
    if item.type == "scale":
        return [{"valueInteger": stored}]
    if item.type == "quantity":
        return [{"valueQuantity": _quantity(stored["value"], stored["unit"])}]
    if item.type == "date":
        return [{"valueDate": stored}]
    return [{"valueString": str(stored)}]


def _item(template: Template, item: Item, stored: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.link_id or item.id, "text": item.text}
    if item.type == "blood_pressure":
        out["item"] = [
            {
                "linkId": f"{item.id}.{part}",
                "text": part.title(),
                "answer": [{"valueQuantity": _quantity(stored[part], BP_UNIT)}],
            }
            for part in BP_COMPONENTS
        ]
    else:
        out["answer"] = _answers(template, item, stored)
    return out


def _who(role: str, user_id: int, name: str | None, patient_id: int) -> dict[str, Any]:
    if role == "patient":
        return {"reference": f"Patient/{patient_id}"}
    ref: dict[str, Any] = {
        "type": "Practitioner" if role == "practitioner" else "RelatedPerson",
        "identifier": {"system": USER_SYSTEM, "value": str(user_id)},
    }
    if name:
        ref["display"] = name
    return ref


def questionnaire_response(
    template: Template, response: Answered, *, author_name: str | None, author_role: str
) -> dict[str, Any]:
    """The QuestionnaireResponse for a stored answer set (see the module doc).

    ``author_role`` is ``patient``, ``practitioner`` or ``related_person``."""
    items = [
        _item(template, item, response.answers[item.id])
        for item in template.items
        if item.id in response.answers
    ]
    if template.total_item and response.score is not None:
        items.append(
            {
                "linkId": template.total_item["link_id"],
                "text": template.total_item["text"],
                "answer": [{"valueDecimal": response.score}],
            }
        )
    author = _who(author_role, response.answered_by_user_id, author_name, response.patient_id)
    source_role = "related_person" if author_role == "related_person" else "patient"
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.id),
        "questionnaire": questionnaire_url(template),
        "status": "completed",
        "subject": {"reference": f"Patient/{response.patient_id}"},
        "authored": response.at.isoformat(),
        "author": author,
        "source": _who(source_role, response.answered_by_user_id, author_name, response.patient_id),
        "item": items,
    }
