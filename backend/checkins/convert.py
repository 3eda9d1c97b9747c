"""Convert the LOINC-coded FHIR R4 Questionnaires (PHQ-9, GAD-7) into our built-in template
definitions (``builtin_templates.json``, committed next to this file).

The source files live in ``../shared/data/fhir/questionnaires/`` (mtnlotus/pco-ig, CC0; LOINC
content © Regenstrief Institute, used under the LOINC licence). The app never reads them at
run time: a fresh clone or CI may not have ``shared/``. ``tests/test_checkin_scoring.py``
re-derives the definitions from the source and compares, so a drift is caught.

Run ``python -m backend.checkins.convert`` to rewrite the JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOINC = "http://loinc.org"
SOURCE_DIR = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fhir" / "questionnaires"
)
BUILTIN_FILE = Path(__file__).with_name("builtin_templates.json")

# LOINC answer list LL358-3 ("Not at all" .. "Nearly every day") carries no scores in the
# FHIR source; the values are the instrument's (Kroenke 2001, Spitzer 2006). GAD-7 item 2 in the
# source uses LA18938-3 "More days than not" in the third position: it scores 2 as well.
ANSWER_VALUES = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA18938-3": 2, "LA6571-9": 3}

# code -> (source file, title, items kept (by position among scored items))
SOURCES = {"PHQ-9": "PHQ9.json", "GAD-7": "GAD7.json"}


def _scored_items(questionnaire: dict[str, Any]) -> list[dict[str, Any]]:
    """The choice items whose answers come from the scored LOINC answer list, in order."""
    items = []
    for item in questionnaire.get("item", []):
        options = [o["valueCoding"] for o in item.get("answerOption", []) if "valueCoding" in o]
        if item.get("type") != "choice" or not options:
            continue
        if not all(o.get("code") in ANSWER_VALUES for o in options):
            continue  # e.g. PHQ-9's "how difficult" item: asked, not scored
        items.append(
            {
                "link_id": item["linkId"],
                "loinc": item["code"][0]["code"],
                "text": item["text"],
                "answers": [
                    {"code": o["code"], "display": o["display"], "value": ANSWER_VALUES[o["code"]]}
                    for o in options
                ],
            }
        )
    return items


def _total_item(questionnaire: dict[str, Any]) -> dict[str, str] | None:
    """The source's total-score item (a decimal the form fills in): its linkId and text, so
    an exported QuestionnaireResponse can carry the score where the Questionnaire expects it."""
    for item in questionnaire.get("item", []):
        if item.get("type") == "decimal" and "total score" in item.get("text", ""):
            return {"link_id": item["linkId"], "text": item["text"]}
    return None


def template_from_questionnaire(code: str, questionnaire: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code,
        "title": questionnaire.get("title", code),
        "loinc": questionnaire["id"],
        "source_url": questionnaire.get("url"),
        "items": _scored_items(questionnaire),
        "total_item": _total_item(questionnaire),
    }


def derive(source_dir: Path = SOURCE_DIR) -> dict[str, Any]:
    """All built-in definitions from the FHIR sources; PHQ-2 is PHQ-9 items 1 and 2."""
    templates: dict[str, Any] = {}
    for code, name in SOURCES.items():
        data = json.loads((source_dir / name).read_text(encoding="utf-8"))
        templates[code] = template_from_questionnaire(code, data)
    phq9 = templates["PHQ-9"]
    templates["PHQ-2"] = {
        "code": "PHQ-2",
        "title": "PHQ-2 quick depression assessment",
        "loinc": "55757-9",
        "source_url": phq9["source_url"],
        "items": phq9["items"][:2],
        # PHQ-2 is answered as the first two items of the PHQ-9 Questionnaire, which has no
        # PHQ-2 total item: the score stays ours, not a Questionnaire item.
        "total_item": None,
    }
    return {
        "_source": "Derived from ../shared/data/fhir/questionnaires/ (mtnlotus/pco-ig, CC0; "
        "LOINC content (c) Regenstrief Institute, LOINC licence) by backend/checkins/convert.py",
        "templates": [templates[c] for c in ("PHQ-2", "PHQ-9", "GAD-7")],
    }


def main() -> None:
    BUILTIN_FILE.write_text(json.dumps(derive(), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
