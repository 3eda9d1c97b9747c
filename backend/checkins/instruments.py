"""The built-in standard instruments (PHQ-2, PHQ-9, GAD-7) and their scoring. Pure: no
database, no Flask.

The definitions come from ``builtin_templates.json`` in this package, converted once by
``backend/checkins/convert.py`` from the LOINC-coded FHIR R4 Questionnaires in
``../shared/data/fhir/questionnaires/`` (mtnlotus/pco-ig, CC0; LOINC content © Regenstrief
Institute, LOINC licence). Answers are keyed by the item's LOINC code and given as the LOINC
answer code (LA6568-5 = 0, LA6569-3 = 1, LA6570-1 = 2, LA6571-9 = 3; GAD-7 item 2's
LA18938-3 "More days than not" = 2) or as that number.

Bands (Kroenke 2001; Spitzer 2006; Kroenke 2003 for PHQ-2):

* PHQ-9, 0-27: 0-4 none, 5-9 mild, 10-14 moderate, 15-19 moderately severe, 20-27 severe.
  Item 9 ("better off dead or hurting yourself") above 0 is a ``safety`` flag whatever the total.
* GAD-7, 0-21: cut points 5/10/15 (none, mild, moderate, severe).
* PHQ-2 (PHQ-9 items 1-2, LOINC 55757-9), 0-6: 3 or more is a ``positive_screen``.

Partial answers are not scored. The PHQ and GAD-7 instruction manual (Pfizer) gives no
proration rule, and prorating would silently hide an unanswered item 9, so an incomplete
answer set gets ``complete=False`` with no total or band (the API refuses it with a 422 that
names the missing items). The safety flag is still computed from whatever was answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from backend.checkins.templates import AnswerError

BUILTIN_FILE = Path(__file__).with_name("builtin_templates.json")
SAFETY = "safety"
POSITIVE_SCREEN = "positive_screen"
PHQ9_ITEM9 = "44260-8"

# (lowest total, band), highest first
BANDS: dict[str, tuple[tuple[int, str], ...]] = {
    "PHQ-9": (
        (20, "severe"),
        (15, "moderately_severe"),
        (10, "moderate"),
        (5, "mild"),
        (0, "none"),
    ),
    "GAD-7": ((15, "severe"), (10, "moderate"), (5, "mild"), (0, "none")),
    "PHQ-2": ((3, "positive"), (0, "negative")),
}


@dataclass(frozen=True)
class AnswerOption:
    code: str
    display: str
    value: int


@dataclass(frozen=True)
class Item:
    link_id: str
    loinc: str
    text: str
    answers: tuple[AnswerOption, ...]

    def value_of(self, answer: object) -> int | None:
        """The score of an answer (a LOINC answer code or its number); None if not allowed."""
        for option in self.answers:
            if isinstance(answer, str) and answer == option.code:
                return option.value
            if isinstance(answer, int) and not isinstance(answer, bool) and answer == option.value:
                return option.value
        return None

    def code_of(self, value: int) -> str:
        return next(o.code for o in self.answers if o.value == value)


@dataclass(frozen=True)
class Instrument:
    code: str
    title: str
    loinc: str
    items: tuple[Item, ...]
    # Standard screeners are the patient's own answers: a caregiver may not answer them.
    caregiver_may_answer: bool = False
    source_url: str | None = None
    total_item: dict[str, str] | None = None

    @property
    def max_total(self) -> int:
        return sum(max(o.value for o in item.answers) for item in self.items)

    def item(self, loinc: str) -> Item | None:
        return next((i for i in self.items if i.loinc == loinc), None)


@dataclass(frozen=True)
class Score:
    total: int | None
    band: str | None
    flags: tuple[str, ...] = ()
    complete: bool = True
    missing: tuple[str, ...] = field(default=())


def _instrument(data: dict[str, Any]) -> Instrument:
    items = tuple(
        Item(
            link_id=i["link_id"],
            loinc=i["loinc"],
            text=i["text"],
            answers=tuple(AnswerOption(a["code"], a["display"], a["value"]) for a in i["answers"]),
        )
        for i in data["items"]
    )
    return Instrument(
        code=data["code"],
        title=data["title"],
        loinc=data["loinc"],
        items=items,
        source_url=data.get("source_url"),
        total_item=data.get("total_item"),
    )


@cache
def builtins() -> dict[str, Instrument]:
    """PHQ-2, PHQ-9 and GAD-7, by code."""
    data = json.loads(BUILTIN_FILE.read_text(encoding="utf-8"))
    return {t["code"]: _instrument(t) for t in data["templates"]}


def band_for(code: str, total: int) -> str:
    return next(name for low, name in BANDS[code] if total >= low)


def check_answers(instrument: Instrument, answers: dict[str, Any]) -> dict[str, int]:
    """The numeric value of every answer; AnswerError naming each unknown item or bad answer."""
    errors: dict[str, str] = {}
    values: dict[str, int] = {}
    for key, answer in answers.items():
        item = instrument.item(key)
        if item is None:
            errors[key] = f"Not an item of {instrument.code}."
            continue
        value = item.value_of(answer)
        if value is None:
            allowed = ", ".join(f"{o.code} ({o.value})" for o in item.answers)
            errors[key] = f"Not an answer to this item; one of {allowed}."
            continue
        values[key] = value
    if errors:
        raise AnswerError(errors)
    return values


def score(instrument: Instrument, answers: dict[str, Any]) -> Score:
    """Score an answer set (item LOINC code -> answer code or number). See the module doc
    for bands, flags and why partial answers are not scored."""
    values = check_answers(instrument, answers)
    flags: list[str] = []
    if values.get(PHQ9_ITEM9, 0) > 0 and instrument.item(PHQ9_ITEM9) is not None:
        flags.append(SAFETY)
    missing = tuple(i.loinc for i in instrument.items if i.loinc not in values)
    if missing:
        return Score(None, None, tuple(flags), complete=False, missing=missing)
    total = sum(values.values())
    band = band_for(instrument.code, total)
    if instrument.code == "PHQ-2" and total >= 3:
        flags.append(POSITIVE_SCREEN)
    return Score(total, band, tuple(flags))
