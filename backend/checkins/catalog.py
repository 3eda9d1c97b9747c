"""The built-in templates in the one template shape (``templates.Template``). Pure.

* PHQ-2, PHQ-9, GAD-7: in English and in their official Spanish (USA) wording
  (``spanish``); the scored screeners of ``instruments`` (LOINC-coded items, answers
  by LOINC answer code or number), with their flag rules: PHQ-9 item 9 above 0 is an urgent
  ``safety`` item; PHQ-9 >= 10, GAD-7 >= 10 and PHQ-2 >= 3 are ``checkin_flag`` items.
  Screeners are the patient's own answers: no caregiver answers them.
* SOCIAL-NEEDS: the five core domains of the CMS Accountable Health Communities HRSN
  screening tool (food, housing, transport, utilities, personal safety) as yes/no
  questions in our own short words; yes is a need, a ``social_need`` item, and personal
  safety is urgent. A caregiver may neither answer it nor read the answers, whatever they
  were granted: the safety question is for the patient alone (the person hurting them may
  be the one holding the phone); the care team can record answers given to them in private.
* POST-DISCHARGE: asked on days 7, 14 and 30 after a discharge (scheduled elsewhere by
  its code). A hospital or ER visit since discharge is a ``checkin_flag`` item; where,
  asked only after a yes, is optional. A caregiver may answer it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from backend.checkins.instruments import BANDS, PHQ9_ITEM9, Instrument, builtins
from backend.checkins.spanish import screener_translation
from backend.checkins.templates import Template, parse_template

LOINC = "http://loinc.org"
SOCIAL_NEEDS = "SOCIAL-NEEDS"
POST_DISCHARGE = "POST-DISCHARGE"

_SCREENER_RULES: dict[str, list[dict[str, Any]]] = {
    "PHQ-9": [
        {
            "name": "phq9_item9",
            "kind": "threshold",
            "item": PHQ9_ITEM9,
            "op": ">",
            "value": 0,
            "flag": "safety",
            "urgent": True,
            "title": "PHQ-9 item 9: thoughts of being better off dead or of self-harm",
        },
        {"name": "phq9_total", "kind": "score", "op": ">=", "value": 10},
    ],
    "GAD-7": [{"name": "gad7_total", "kind": "score", "op": ">=", "value": 10}],
    "PHQ-2": [{"name": "phq2_positive", "kind": "score", "op": ">=", "value": 3}],
}

_SOCIAL = [
    ("food", "In the last 12 months, did you worry that your food would run out before you "
     "had money to buy more?", "Social need: food", False),
    ("housing", "Are you worried about losing your housing, or do you not have a steady "
     "place to live?", "Social need: housing", False),
    ("transport", "In the last 12 months, has a lack of transport kept you from medical "
     "visits, work or getting things you need?", "Social need: transport", False),
    ("utilities", "In the last 12 months, has a utility company threatened to shut off your "
     "electricity, gas, oil or water?", "Social need: utilities", False),
    ("safety", "Does anyone hurt you, threaten you or make you feel unsafe?",
     "Social need: personal safety", True),
]  # fmt: skip

DEFINITIONS: list[dict[str, Any]] = [
    {
        "code": SOCIAL_NEEDS,
        "title": "Social needs",
        "caregiver_may_answer": False,
        "hidden_from_caregivers": True,
        "items": [{"id": i, "text": text, "type": "boolean"} for i, text, _, _ in _SOCIAL],
        "flag_rules": [
            {
                "name": f"need_{i}",
                "kind": "equals",
                "item": i,
                "value": True,
                "flag": "social_need",
                "urgent": urgent,
                "title": title,
            }
            for i, _, title, urgent in _SOCIAL
        ],
    },
    {
        "code": POST_DISCHARGE,
        "title": "After your hospital stay",
        "caregiver_may_answer": True,
        "items": [
            {
                "id": "er_visit",
                "text": "Have you been to a hospital or emergency room since you left the "
                "hospital?",
                "type": "boolean",
            },
            {
                "id": "er_visit_where",
                "text": "Which hospital or emergency room, and when?",
                "type": "text",
                "max_length": 500,
                "required": False,
                "enable_when": {"item": "er_visit", "equals": True},
            },
        ],
        "flag_rules": [
            {
                "name": "er_visit",
                "kind": "equals",
                "item": "er_visit",
                "value": True,
                "title": "Hospital or ER visit since discharge",
            }
        ],
    },
]


def _screener(instrument: Instrument) -> Template:
    items = [
        {
            "id": item.loinc,
            "link_id": item.link_id,
            "loinc": item.loinc,
            "text": item.text,
            "type": "choice",
            "options": [
                {"code": o.code, "display": o.display, "value": o.value, "system": LOINC}
                for o in item.answers
            ],
        }
        for item in instrument.items
    ]
    spanish = screener_translation(instrument.code, items)
    return parse_template(
        {
            "code": instrument.code,
            "title": instrument.title,
            "loinc": instrument.loinc,
            "source_url": instrument.source_url,
            "caregiver_may_answer": instrument.caregiver_may_answer,
            "scoring": "sum",
            "bands": BANDS[instrument.code],
            "total_item": instrument.total_item,
            "items": items,
            "translations": {"es": spanish} if spanish else {},
            "flag_rules": _SCREENER_RULES[instrument.code],
        },
        builtin=True,
    )


@cache
def builtin_templates() -> dict[str, Template]:
    """Every built-in template by code: PHQ-2, PHQ-9, GAD-7, SOCIAL-NEEDS, POST-DISCHARGE."""
    found = {code: _screener(i) for code, i in builtins().items()}
    for definition in DEFINITIONS:
        found[definition["code"]] = parse_template(definition, builtin=True)
    return found
