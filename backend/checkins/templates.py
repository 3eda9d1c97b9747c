"""Check-in templates: their items, conditions and how answers are checked. Pure: no
database, no Flask.

One shape serves the built-in screeners (PHQ-2, PHQ-9, GAD-7, keyed by LOINC code), the
built-in SOCIAL-NEEDS and POST-DISCHARGE templates and the templates an organization writes.

Item types and what an answer to each looks like (``answers`` maps item id -> answer):

* ``boolean`` — ``true`` / ``false``.
* ``choice`` — one option code (``"LA6569-3"``), or the option's number when the options
  carry numbers (the screeners' 0-3).
* ``multi_choice`` — a non-empty list of distinct option codes.
* ``scale`` — a whole number within the item's ``min``..``max`` (inside 0-10).
* ``quantity`` — a number in a unit: ``{"value": 5.4, "unit": "mmol/L"}``, or a bare number
  in the item's canonical unit. An item names a ``measure`` (glucose, weight, temperature,
  heart_rate, oxygen_saturation) whose units convert to one canonical unit (mg/dL, kg, Cel,
  /min, %), or a single fixed ``unit`` of its own with no conversion. Bounds (``min``,
  ``max``) are in the canonical unit and are checked after conversion; rules compare the
  canonical value. The stored answer keeps what was entered and the canonical value.
* ``blood_pressure`` — ``{"systolic": 150, "diastolic": 95}`` in mm[Hg], whole numbers,
  systolic 50-300 above diastolic 20-200; rules name the component.
* ``date`` — ``"YYYY-MM-DD"``.
* ``text`` — a string, not blank, at most the item's ``max_length`` (default 500, at most 2000).

Languages: a template is written in one language (``language``, default ``en``) and may
carry ``translations``: per language, the title and *every* item's text and option displays
(``{"es": {"title": ..., "items": {"<item>": {"text": ..., "answers": {"<code>": ...}}}}}``;
a partial translation is refused: half a form in each language helps nobody). Codes, types,
bounds and rules are the template's own, so an answer means the same in every language.
:meth:`Template.in_language` picks the reader's language, else English, else the template's
own, and says which (``language``).

Optional items: ``required`` defaults to true; an optional item may be left out.

Conditional items: ``enable_when: {"item": "er_visit", "equals": true}`` shows the item only
when an earlier item's answer equals the value (for a ``multi_choice`` item: includes that
code). An item whose controlling item is unanswered or itself not shown is not shown. An
answer to an item that is not shown is refused (it would be data nobody asked for, and a
rule could fire on it); a required item is required only while it is shown. Conditions may
only point backwards, so they cannot loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from backend.models.checkin import TemplateKey
from backend.models.profile import SUPPORTED_LANGUAGES

ITEM_TYPES = (
    "boolean",
    "choice",
    "multi_choice",
    "scale",
    "quantity",
    "blood_pressure",
    "date",
    "text",
)
MAX_ITEMS = 60
MAX_OPTIONS = 30
TEXT_DEFAULT_LENGTH = 500
TEXT_MAX_LENGTH = 2000
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")
UCUM = "http://unitsofmeasure.org"
BP_UNIT = "mm[Hg]"
# Plausible readings, not clinical targets: outside them it is a typo, not a reading.
BP_BOUNDS = {"systolic": (50, 300), "diastolic": (20, 200)}
BP_COMPONENTS = tuple(BP_BOUNDS)


@dataclass(frozen=True)
class Unit:
    """A unit by its UCUM code; canonical value = value * factor + offset."""

    code: str
    factor: float
    offset: float = 0.0
    aliases: tuple[str, ...] = ()

    def to_canonical(self, value: float) -> float:
        return value * self.factor + self.offset


@dataclass(frozen=True)
class Measure:
    name: str
    canonical: str
    units: tuple[Unit, ...]
    low: float  # plausible bounds in the canonical unit
    high: float
    decimals: int = 1

    def unit(self, name: str) -> Unit | None:
        return next((u for u in self.units if name == u.code or name in u.aliases), None)


# Glucose mmol/L -> mg/dL: 1 mmol/L of glucose (180.16 g/mol) is 18.016 mg/dL; the factor
# depends on the substance, which is why units belong to a measure and not to a table of
# their own. Pounds: the international avoirdupois pound, 0.45359237 kg exactly.
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "glucose",
            "mg/dL",
            (Unit("mg/dL", 1.0), Unit("mmol/L", 18.016)),
            10,
            1000,
            0,
        ),
        Measure(
            "weight",
            "kg",
            (Unit("kg", 1.0), Unit("[lb_av]", 0.45359237, aliases=("lb", "lbs"))),
            0.5,
            500,
            1,
        ),
        Measure(
            "temperature",
            "Cel",
            (
                Unit("Cel", 1.0, aliases=("C", "°C")),
                Unit("[degF]", 5 / 9, -32 * 5 / 9, aliases=("F", "°F")),
            ),
            25,
            45,
            1,
        ),
        Measure("heart_rate", "/min", (Unit("/min", 1.0, aliases=("bpm",)),), 20, 250, 0),
        Measure("oxygen_saturation", "%", (Unit("%", 1.0),), 50, 100, 0),
    )
}


class TemplateError(ValueError):
    """A template definition that does not hold together: ``errors`` is nested like the
    request body (``{"items": {"2": {"options": ["..."]}}}``)."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(errors)
        self.errors = errors


class AnswerError(ValueError):
    """Answers that do not fit the template or instrument: ``errors`` maps item -> message."""

    def __init__(self, errors: dict[str, str], *, only_missing: bool = False) -> None:
        super().__init__(errors)
        self.errors = errors
        self.only_missing = only_missing


@dataclass(frozen=True)
class Option:
    code: str
    display: str
    value: int | None = None
    system: str | None = None  # e.g. http://loinc.org for LOINC answer codes


@dataclass(frozen=True)
class EnableWhen:
    item: str
    equals: Any


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    type: str
    required: bool = True
    options: tuple[Option, ...] = ()
    min: float | None = None
    max: float | None = None
    measure: str | None = None
    unit: str | None = None  # the canonical unit (a measure's, or the item's own)
    max_length: int = TEXT_DEFAULT_LENGTH
    enable_when: EnableWhen | None = None
    link_id: str | None = None  # the FHIR Questionnaire linkId, when it differs from id
    loinc: str | None = None

    @property
    def numeric(self) -> bool:
        """Whether rules can compare this item's answer with a number."""
        if self.type == "choice":
            return any(o.value is not None for o in self.options)
        return self.type in ("scale", "quantity", "blood_pressure")

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    def units(self) -> tuple[Unit, ...]:
        if self.measure is not None:
            return MEASURES[self.measure].units
        return (Unit(self.unit or "1", 1.0),)

    def number(self, stored: Any, component: str | None = None) -> float | None:
        """The number rules compare for a stored answer (canonical unit), or None."""
        if stored is None:
            return None
        if self.type == "choice":
            option = self.option(stored)
            return None if option is None or option.value is None else float(option.value)
        if self.type == "scale":
            return float(stored)
        if self.type == "quantity":
            return float(stored["canonical_value"])
        if self.type == "blood_pressure" and component in BP_COMPONENTS:
            return float(stored[component])
        return None

    def check(self, answer: Any) -> Any:
        """The answer as stored; ValueError with the reason when it does not fit."""
        check = _CHECKS[self.type]
        return check(self, answer)

    def matches(self, stored: Any, value: Any) -> bool:
        """Whether a stored answer equals ``value`` (for multi_choice: includes it)."""
        if stored is None:
            return False
        if self.type == "multi_choice":
            return value in stored
        if self.type == "choice" and isinstance(value, int) and not isinstance(value, bool):
            return self.number(stored) == value
        return bool(stored == value)


def is_number(value: Any) -> bool:
    """A finite JSON number (JSON also brings huge integers, and Python's parser NaN)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) < 1e15
    except OverflowError:
        return False


def _check_boolean(item: Item, answer: Any) -> bool:
    if not isinstance(answer, bool):
        raise ValueError("Answer true or false.")
    return answer


def _check_choice(item: Item, answer: Any) -> str:
    for option in item.options:
        if isinstance(answer, str) and answer == option.code:
            return option.code
        if is_number(answer) and option.value is not None and answer == option.value:
            return option.code
    allowed = ", ".join(
        o.code if o.value is None else f"{o.code} ({o.value})" for o in item.options
    )
    raise ValueError(f"Not an answer to this item; one of {allowed}.")


def _check_multi(item: Item, answer: Any) -> list[str]:
    if not isinstance(answer, list) or not answer:
        raise ValueError("A non-empty list of option codes.")
    codes = [o.code for o in item.options]
    if any(not isinstance(a, str) or a not in codes for a in answer):
        raise ValueError(f"Each answer one of {', '.join(codes)}.")
    if len(set(answer)) != len(answer):
        raise ValueError("An option may be chosen once.")
    return sorted(answer, key=codes.index)


def _check_scale(item: Item, answer: Any) -> int:
    low, high = int(item.min or 0), int(item.max if item.max is not None else 10)
    if not is_number(answer) or answer != int(answer) or not low <= answer <= high:
        raise ValueError(f"A whole number from {low} to {high}.")
    return int(answer)


def _check_quantity(item: Item, answer: Any) -> dict[str, Any]:
    units = item.units()
    if is_number(answer):
        value, unit_name = answer, units[0].code
    elif isinstance(answer, dict) and set(answer) <= {"value", "unit"} and "value" in answer:
        value, unit_name = answer["value"], answer.get("unit", units[0].code)
    else:
        raise ValueError(f'A number, or {{"value": number, "unit": "{units[0].code}"}}.')
    if not is_number(value):
        raise ValueError("The value must be a number.")
    unit = next(
        (u for u in units if isinstance(unit_name, str) and unit_name in (u.code, *u.aliases)),
        None,
    )
    if unit is None:
        raise ValueError(f"Unit one of {', '.join(u.code for u in units)}.")
    canonical = unit.to_canonical(float(value))
    decimals = MEASURES[item.measure].decimals if item.measure else 2
    canonical = round(canonical, max(decimals, 2))
    if (item.min is not None and canonical < item.min) or (
        item.max is not None and canonical > item.max
    ):
        raise ValueError(
            f"Out of range: {_fmt(item.min)}-{_fmt(item.max)} {item.unit} "
            f"(this answer is {_fmt(canonical)} {item.unit})."
        )
    return {
        "value": value,
        "unit": unit.code,
        "canonical_value": canonical,
        "canonical_unit": item.unit,
    }


def _check_blood_pressure(item: Item, answer: Any) -> dict[str, int]:
    if not isinstance(answer, dict) or set(answer) != set(BP_COMPONENTS):
        raise ValueError('{"systolic": number, "diastolic": number} in mm[Hg].')
    out: dict[str, int] = {}
    for name, (low, high) in BP_BOUNDS.items():
        value = answer[name]
        if not is_number(value) or value != int(value) or not low <= value <= high:
            raise ValueError(f"{name.title()} a whole number from {low} to {high} mm[Hg].")
        out[name] = int(value)
    if out["systolic"] <= out["diastolic"]:
        raise ValueError("Systolic must be above diastolic.")
    return out


def _check_date(item: Item, answer: Any) -> str:
    if not isinstance(answer, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", answer):
        raise ValueError("A date, YYYY-MM-DD.")
    try:
        date.fromisoformat(answer)
    except ValueError:
        raise ValueError("Not a calendar date.") from None
    return answer


def _check_text(item: Item, answer: Any) -> str:
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError("Some text.")
    if len(answer) > item.max_length:
        raise ValueError(f"At most {item.max_length} characters.")
    if "\x00" in answer:
        raise ValueError("Text may not contain NUL characters.")
    return answer.strip()


_CHECKS: dict[str, Any] = {
    "boolean": _check_boolean,
    "choice": _check_choice,
    "multi_choice": _check_multi,
    "scale": _check_scale,
    "quantity": _check_quantity,
    "blood_pressure": _check_blood_pressure,
    "date": _check_date,
    "text": _check_text,
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Template:
    code: str
    title: str
    items: tuple[Item, ...]
    caregiver_may_answer: bool = False
    # Answers caregivers never see, whatever they were granted (a personal-safety question:
    # the person hurting the patient may be the one holding the phone).
    hidden_from_caregivers: bool = False
    builtin: bool = False
    organization_id: int | None = None
    loinc: str | None = None
    source_url: str | None = None  # the FHIR Questionnaire canonical URL of a builtin
    # "sum": the total of the items' option numbers, banded; None: not scored.
    scoring: str | None = None
    bands: tuple[tuple[int, str], ...] = ()
    total_item: dict[str, str] | None = None  # FHIR linkId/text of the total score
    flag_rules: tuple[dict[str, Any], ...] = field(default=())
    language: str = "en"  # the language of title and texts as they are here
    own_language: str = "en"  # the language the template was written in
    # language -> {"title", "items": {item: {"text", "answers": {code: display}}}}, complete
    translations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    @property
    def key(self) -> TemplateKey:
        """Which template this is: a built-in by code, an organization's by both."""
        return TemplateKey(None if self.builtin else self.organization_id, self.code)

    @property
    def languages(self) -> list[str]:
        """The languages this template can be read in, its own first."""
        return [self.own_language, *sorted(set(self.translations) - {self.own_language})]

    def in_language(self, wanted: str | None) -> Template:
        """The template in ``wanted`` (a BCP 47 tag: its primary subtag), else in English,
        else as written; ``language`` says which. Called on the template as written."""
        primary = (wanted or "").replace("_", "-").split("-")[0].strip().lower()
        for lang in (primary, "en"):
            if lang == self.own_language:
                return self
            text = self.translations.get(lang)
            if text is not None:
                return self._translated(lang, text)
        return self

    def _translated(self, lang: str, text: dict[str, Any]) -> Template:
        items = text["items"]
        return replace(
            self,
            title=text["title"],
            language=lang,
            items=tuple(
                replace(
                    i,
                    text=items[i.id]["text"],
                    options=tuple(
                        replace(o, display=items[i.id].get("answers", {})[o.code])
                        for o in i.options
                    ),
                )
                for i in self.items
            ),
        )

    @property
    def max_score(self) -> int | None:
        if self.scoring != "sum":
            return None
        return sum(max((o.value or 0) for o in i.options) for i in self.items if i.options)

    def band_for(self, total: int) -> str | None:
        return next((name for low, name in self.bands if total >= low), None)

    def enabled(self, item: Item, answers: dict[str, Any], shown: set[str]) -> bool:
        condition = item.enable_when
        if condition is None:
            return True
        controller = self.item(condition.item)
        if controller is None or controller.id not in shown:
            return False
        return controller.matches(answers.get(controller.id), condition.equals)

    def check_answers(self, answers: dict[str, Any]) -> dict[str, Any]:
        """Every answer as stored, in item order; AnswerError naming each unknown item, bad
        answer, answer to an item not shown, and required item left out."""
        errors: dict[str, str] = {}
        stored: dict[str, Any] = {}
        for key, answer in answers.items():
            item = self.item(key)
            if item is None:
                errors[key] = f"Not an item of {self.code}."
                continue
            if answer is None:
                errors[key] = "An answer, or leave the item out."
                continue
            try:
                stored[key] = item.check(answer)
            except ValueError as exc:
                errors[key] = str(exc)
        shown: set[str] = set()
        missing: dict[str, str] = {}
        for item in self.items:
            condition = item.enable_when
            if condition is not None and condition.item in errors:
                continue  # cannot tell whether it is shown until its controller is fixed
            if self.enabled(item, stored, shown):
                shown.add(item.id)
                if item.required and item.id not in answers:
                    missing[item.id] = "Missing."
            elif item.id in answers and item.id not in errors:
                assert condition is not None
                errors[item.id] = (
                    f"Not asked: shown only when {condition.item} is "
                    f"{_show(condition.equals)}; leave it out."
                )
        # Wrong answers first: what is missing may change once they are fixed.
        if errors:
            raise AnswerError(errors)
        if missing:
            raise AnswerError(missing, only_missing=True)
        return {i.id: stored[i.id] for i in self.items if i.id in stored}

    def total(self, stored: dict[str, Any]) -> int | None:
        if self.scoring != "sum":
            return None
        values = [i.number(stored.get(i.id)) for i in self.items if i.options]
        if any(v is None for v in values):
            return None
        return int(sum(v for v in values if v is not None))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- definitions -> Template ----------------------------------------------------------


def _err(errors: dict[str, Any], path: tuple[str, ...], message: str) -> None:
    node = errors
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], []).append(message)


def _item(data: dict[str, Any], earlier: dict[str, Item], errors: dict[str, Any], at: str) -> Item:
    """One item from its definition; problems recorded under items.<at>.<field>."""

    def bad(name: str, message: str) -> None:
        _err(errors, ("items", at, name), message)

    item_id, kind = data.get("id", ""), data.get("type", "")
    if not isinstance(item_id, str) or not ID_PATTERN.fullmatch(item_id):
        bad("id", "Letters, digits, '_', '.', '-'; up to 40.")
    elif item_id in earlier:
        bad("id", "Already used by another item.")
    if kind not in ITEM_TYPES:
        bad("type", f"One of {', '.join(ITEM_TYPES)}.")
    options: list[Option] = []
    raw_options = data.get("options") or []
    if kind in ("choice", "multi_choice"):
        if not 2 <= len(raw_options) <= MAX_OPTIONS:
            bad("options", f"From 2 to {MAX_OPTIONS} options.")
        for o in raw_options:
            options.append(Option(o["code"], o["display"], o.get("value"), o.get("system")))
        if len({o.code for o in options}) != len(options):
            bad("options", "Option codes must differ.")
    elif raw_options:
        bad("options", "Only choice and multi_choice items have options.")
    low, high = data.get("min"), data.get("max")
    measure, unit = data.get("measure"), data.get("unit")
    if kind == "scale":
        low = 0 if low is None else low
        high = 10 if high is None else high
        if not (_whole(low) and _whole(high) and 0 <= low < high <= 10):
            bad("max", "A scale runs over whole numbers within 0-10, min below max.")
    elif kind == "quantity":
        if (measure is None) == (unit is None):
            bad("measure", f"Give a measure ({', '.join(MEASURES)}) or a fixed unit, not both.")
        elif measure is not None:
            if measure not in MEASURES:
                bad("measure", f"One of {', '.join(MEASURES)}.")
            else:
                m = MEASURES[measure]
                unit = m.canonical
                low = m.low if low is None else low
                high = m.high if high is None else high
                if low < m.low or high > m.high:
                    bad("max", f"Within {_fmt(m.low)}-{_fmt(m.high)} {m.canonical}.")
        elif low is None or high is None:
            bad("max", "A quantity with its own unit needs min and max.")
        if low is not None and high is not None and low >= high:
            bad("max", "max must be above min.")
    elif low is not None or high is not None:
        bad("min", "Only scale and quantity items have bounds.")
    if kind != "quantity" and (measure is not None or unit is not None):
        bad("measure", "Only quantity items have a measure or unit.")
    max_length = data.get("max_length")
    if max_length is not None and kind != "text":
        bad("max_length", "Only text items have a length.")
    max_length = TEXT_DEFAULT_LENGTH if max_length is None else max_length
    if not 1 <= max_length <= TEXT_MAX_LENGTH:
        bad("max_length", f"From 1 to {TEXT_MAX_LENGTH}.")
    enable_when = None
    if data.get("enable_when") is not None:
        cond = data["enable_when"]
        controller = earlier.get(cond.get("item", ""))
        if controller is None:
            bad("enable_when", "Name an earlier item of this template.")
        elif controller.type not in ("boolean", "choice", "multi_choice"):
            bad("enable_when", "The item it depends on must be boolean or a choice.")
        else:
            equals = cond.get("equals")
            try:
                probe = controller if controller.type != "multi_choice" else None
                if probe is not None:
                    probe.check(equals)
                elif equals not in [o.code for o in controller.options]:
                    raise ValueError("Not an option of that item.")
            except ValueError as exc:
                bad("enable_when", f"equals: {exc}")
            enable_when = EnableWhen(controller.id, equals)
    return Item(
        id=item_id if isinstance(item_id, str) else "",
        text=data.get("text", ""),
        type=kind,
        required=bool(data.get("required", True)),
        options=tuple(options),
        min=low,
        max=high,
        measure=measure,
        unit=unit,
        max_length=max_length,
        enable_when=enable_when,
        link_id=data.get("link_id"),
        loinc=data.get("loinc"),
    )


def _whole(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def parse_template(data: dict[str, Any], **extra: Any) -> Template:
    """A Template from its JSON definition (as the API takes it and the database keeps it);
    TemplateError naming each problem. ``flag_rules`` are checked by ``rules.parse_rules``."""
    errors: dict[str, Any] = {}
    raw_items = data.get("items") or []
    if not 1 <= len(raw_items) <= MAX_ITEMS:
        _err(errors, ("items",), f"From 1 to {MAX_ITEMS} items.")
    items: dict[str, Item] = {}
    for index, raw in enumerate(raw_items):
        item = _item(raw, items, errors, str(index))
        if item.id and item.id not in items:
            items[item.id] = item
    scoring = data.get("scoring")
    bands = tuple((int(low), str(name)) for low, name in data.get("bands") or ())
    if scoring == "sum":
        for index, item in enumerate(items.values()):
            if item.type != "choice" or any(o.value is None for o in item.options):
                _err(errors, ("items", str(index), "type"), "A summed template has scored choices.")
            elif not item.required or item.enable_when is not None:
                _err(errors, ("items", str(index), "required"), "Scored items are always asked.")
    language = data.get("language") or "en"
    if language not in SUPPORTED_LANGUAGES:
        _err(errors, ("language",), f"One of {', '.join(SUPPORTED_LANGUAGES)}.")
    translations = _translations(data.get("translations") or {}, language, items, errors)
    if errors:
        raise TemplateError(errors)
    return Template(
        language=language,
        own_language=language,
        translations=translations,
        code=data["code"],
        title=data["title"],
        items=tuple(items.values()),
        caregiver_may_answer=bool(data.get("caregiver_may_answer", False)),
        hidden_from_caregivers=bool(data.get("hidden_from_caregivers", False)),
        loinc=data.get("loinc"),
        source_url=data.get("source_url"),
        scoring=scoring,
        bands=tuple(sorted(bands, reverse=True)),
        total_item=data.get("total_item"),
        flag_rules=tuple(data.get("flag_rules") or ()),
        **extra,
    )


def _text(value: Any, max_len: int) -> bool:
    return isinstance(value, str) and value.strip() == value and 0 < len(value) <= max_len


def _translations(
    raw: Any, base: str, items: dict[str, Item], errors: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The translations, checked complete: every item's text and every option's display in
    each language; problems under translations.<lang>...."""
    found: dict[str, dict[str, Any]] = {}
    if not isinstance(raw, dict):
        _err(errors, ("translations",), "An object of languages.")
        return found
    for lang, text in raw.items():

        def bad(*path: str, message: str, lang: str = lang) -> None:
            _err(errors, ("translations", lang, *path), message)

        if lang not in SUPPORTED_LANGUAGES or lang == base:
            others = [x for x in SUPPORTED_LANGUAGES if x != base]
            bad("language", message=f"A language other than the template's own: {others}.")
            continue
        if not isinstance(text, dict):
            bad("title", message="An object with title and items.")
            continue
        if not _text(text.get("title"), 200):
            bad("title", message="The title, one line up to 200 characters.")
        raw_items = text.get("items")
        given: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        clean: dict[str, Any] = {}
        for item_id in sorted(set(given) - set(items)):
            bad("items", item_id, message="Not an item of this template.")
        for item in items.values():
            entry = given.get(item.id)
            if not isinstance(entry, dict) or not _text(entry.get("text"), 500):
                bad("items", item.id, "text", message="Missing: every item is translated.")
                continue
            raw_answers = entry.get("answers")
            answers: dict[str, Any] = raw_answers if isinstance(raw_answers, dict) else {}
            codes = {o.code for o in item.options}
            for code in sorted(set(answers) - codes):
                bad("items", item.id, "answers", code, message="Not an option of this item.")
            for code in sorted(codes):
                if not _text(answers.get(code), 200):
                    bad("items", item.id, "answers", code, message="Missing.")
            clean[item.id] = {"text": entry["text"], "answers": {c: answers.get(c) for c in codes}}
        found[lang] = {"title": text.get("title"), "items": clean}
        if text.get("source") is not None:
            found[lang]["source"] = text["source"]
    return found
