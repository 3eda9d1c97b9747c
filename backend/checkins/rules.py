"""Flag rules: when an answered check-in needs a person. Pure: no database, no Flask.

A rule is a small JSON object, kept in a template's ``flag_rules`` or, for one patient, in
``patient_flag_rules``. Every rule has a ``name`` (unique within its template; the
worklist key is ``checkin:<response id>:<name>``), the worklist ``flag`` it raises
(``checkin_flag``, ``safety`` or ``social_need``), ``urgent`` (pushes the care team at
once; always so for ``safety``) and an optional ``title`` for the coordinator. The kinds:

* ``threshold`` — a number item (scale, quantity in its canonical unit, a scored choice's
  number, or a blood-pressure ``component``) compared with ``op`` (``<``, ``<=``, ``>``,
  ``>=``) and ``value``: glucose < 70 mg/dL, systolic >= 180, PHQ-9 item 9 > 0.
* ``score`` — the template's total compared with ``op`` and ``value`` (PHQ-9 >= 10).
* ``band_at_least`` — the total's band is ``band`` or a worse one (GAD-7 moderate or worse).
* ``equals`` — an item's answer equals ``value`` (a multi_choice answer includes it).
* ``change`` — a number item moved by ``op`` ``value`` against any of the patient's earlier
  answers to the same item within ``days`` (1-30): weight up more than 2 kg in 3 days is
  ``{"op": ">", "value": 2, "days": 3}``, a drop of 5 is ``{"op": "<", "value": -5}``.
* ``off`` — only for a patient's rule: switches off the template rule of the same name.

A patient's rule with the name of a template rule replaces it for that patient; any other
name adds to the template's rules. Template rules that raise ``safety`` cannot be replaced or
switched off (PHQ-9 item 9 must always reach a person).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backend.checkins.templates import BP_COMPONENTS, Template, is_number

RULE_KINDS = ("threshold", "score", "band_at_least", "equals", "change", "off")
FLAGS = ("checkin_flag", "safety", "social_need")
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_CHANGE_DAYS = 30


class RuleError(ValueError):
    """A rule that does not fit its template: ``errors`` maps field -> messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    flag: str = "checkin_flag"
    urgent: bool = False
    item: str | None = None
    component: str | None = None
    op: str | None = None
    value: Any = None
    days: int | None = None
    band: str | None = None
    title: str | None = None

    @property
    def locked(self) -> bool:
        return self.flag == "safety"

    def as_json(self) -> dict[str, Any]:
        fields = (
            "name",
            "kind",
            "flag",
            "urgent",
            "item",
            "component",
            "op",
            "value",
            "days",
            "band",
            "title",
        )
        return {k: getattr(self, k) for k in fields if getattr(self, k) is not None}


@dataclass(frozen=True)
class Match:
    """A rule that fired on an answer: what the worklist item says."""

    rule: Rule
    title: str
    item: str | None
    value: Any


def parse_rule(template: Template, data: dict[str, Any], *, for_patient: bool = False) -> Rule:
    """A Rule from its JSON; RuleError naming each field that does not fit the template."""
    errors: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    kind, name = data.get("kind"), data.get("name", "")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        bad("name", "Lower-case letters, digits, '_' and '-'; up to 60.")
    if kind not in RULE_KINDS or (kind == "off" and not for_patient):
        bad("kind", f"One of {', '.join(k for k in RULE_KINDS if for_patient or k != 'off')}.")
    flag = data.get("flag", "checkin_flag")
    if flag not in FLAGS:
        bad("flag", f"One of {', '.join(FLAGS)}.")
    op, value = data.get("op"), data.get("value")
    item = template.item(data["item"]) if isinstance(data.get("item"), str) else None
    needs_item = kind in ("threshold", "equals", "change")
    if needs_item and item is None:
        bad("item", f"Name an item of {template.code}.")
    if not needs_item and data.get("item") is not None:
        bad("item", f"A {kind} rule names no item.")
    component = data.get("component")
    if item is not None and item.type == "blood_pressure" and kind in ("threshold", "change"):
        if component not in BP_COMPONENTS:
            bad("component", f"One of {', '.join(BP_COMPONENTS)} for a blood pressure.")
    elif component is not None:
        bad("component", "Only a blood-pressure item has components.")
    if kind in ("threshold", "score", "change"):
        if op not in OPS:
            bad("op", f"One of {', '.join(OPS)}.")
        if not is_number(value):
            bad("value", "A number (in the item's canonical unit).")
    if kind in ("threshold", "change") and item is not None and not item.numeric:
        bad("item", "Compare only a number item (scale, quantity, blood pressure, scored choice).")
    if kind == "change" and item is not None and item.type == "choice":
        bad("item", "Change over days needs a measured item (scale, quantity, blood pressure).")
    days = data.get("days")
    if kind == "change":
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_CHANGE_DAYS:
            bad("days", f"Whole days from 1 to {MAX_CHANGE_DAYS}.")
    elif days is not None:
        bad("days", "Only a change rule has days.")
    if kind in ("score", "band_at_least") and template.scoring is None:
        bad("kind", f"{template.code} has no score.")
    band = data.get("band")
    if kind == "band_at_least" and band not in [b for _, b in template.bands]:
        bad("band", f"One of {', '.join(b for _, b in reversed(template.bands))}.")
    elif kind != "band_at_least" and band is not None:
        bad("band", "Only a band_at_least rule has a band.")
    if kind == "equals" and item is not None:
        try:
            if item.type == "multi_choice":
                if value not in [o.code for o in item.options]:
                    raise ValueError("Not an option of that item.")
            else:
                item.check(value)
        except ValueError as exc:
            bad("value", str(exc))
    if errors:
        raise RuleError(errors)
    if kind == "equals" and item is not None and item.type == "choice":
        value = item.check(value)  # an option's number becomes its code
    return Rule(
        name=name,
        kind=str(kind),
        flag=flag,
        # A safety item always reaches a person at once, whatever the rule says.
        urgent=bool(data.get("urgent", False)) or flag == "safety",
        item=item.id if item is not None else None,
        component=component,
        op=op,
        value=value,
        days=days,
        band=band,
        title=data.get("title"),
    )


def template_rules(template: Template) -> list[Rule]:
    return [parse_rule(template, r) for r in template.flag_rules]


def effective(template_rules: Sequence[Rule], patient_rules: Iterable[Rule]) -> list[Rule]:
    """The template's rules with the patient's on top: same name replaces (or ``off``
    removes), other names add. Locked template rules stay whatever the patient rules say."""
    by_name = {r.name: r for r in template_rules}
    for rule in patient_rules:
        current = by_name.get(rule.name)
        if current is not None and current.locked:
            continue
        if rule.kind == "off":
            by_name.pop(rule.name, None)
        else:
            by_name[rule.name] = rule
    return list(by_name.values())


@dataclass(frozen=True)
class Earlier:
    """One earlier answer of the same patient to the same template."""

    at: datetime
    answers: dict[str, Any]


def evaluate(
    template: Template,
    rules: Iterable[Rule],
    answers: dict[str, Any],
    *,
    total: int | None = None,
    band: str | None = None,
    at: datetime | None = None,
    earlier: Sequence[Earlier] = (),
) -> list[Match]:
    """The rules that fire on a stored answer set (item id -> answer as stored)."""
    matches = []
    for rule in rules:
        match = _evaluate_one(template, rule, answers, total, band, at, earlier)
        if match is not None:
            matches.append(match)
    return matches


def _evaluate_one(
    template: Template,
    rule: Rule,
    answers: dict[str, Any],
    total: int | None,
    band: str | None,
    at: datetime | None,
    earlier: Sequence[Earlier],
) -> Match | None:
    item = template.item(rule.item) if rule.item else None
    label = template.code
    if rule.kind == "score":
        if total is None or not OPS[rule.op or ">="](total, rule.value):
            return None
        return Match(
            rule, rule.title or f"{label} score {total} ({rule.op} {_n(rule.value)})", None, total
        )
    if rule.kind == "band_at_least":
        lows = {name: low for low, name in template.bands}
        if band is None or rule.band not in lows or lows[band] < lows[rule.band]:
            return None
        return Match(
            rule, rule.title or f"{label} {band.replace('_', ' ')} (score {total})", None, band
        )
    if item is None or item.id not in answers:
        return None
    stored = answers[item.id]
    what = f"{item.id}.{rule.component}" if rule.component else item.id
    if rule.kind == "equals":
        if not item.matches(stored, rule.value):
            return None
        return Match(rule, rule.title or f"{label}: {what} is {_show(rule.value)}", item.id, stored)
    number = item.number(stored, rule.component)
    if number is None:
        return None
    unit = (
        f" {item.unit}"
        if item.type == "quantity"
        else (" mm[Hg]" if item.type == "blood_pressure" else "")
    )
    if rule.kind == "threshold":
        if not OPS[rule.op or ">"](number, rule.value):
            return None
        title = f"{label}: {what} {_n(number)}{unit} ({rule.op} {_n(rule.value)})"
        return Match(rule, rule.title or title, item.id, stored)
    if rule.kind == "change" and at is not None and rule.days is not None:
        since = at - timedelta(days=rule.days)
        before = [
            n
            for e in earlier
            if since <= e.at < at
            and (n := item.number(e.answers.get(item.id), rule.component)) is not None
        ]
        if not before:
            return None
        # Against the reading that makes the largest move in the rule's direction.
        rising = rule.op in (">", ">=")
        base = min(before) if rising else max(before)
        change = round(number - base, 3)
        if not OPS[rule.op or ">"](change, rule.value):
            return None
        title = (
            f"{label}: {what} {'+' if change >= 0 else ''}{_n(change)}{unit} "
            f"in {rule.days} days (now {_n(number)}{unit})"
        )
        return Match(
            rule, rule.title or title, item.id, {"now": number, "from": base, "change": change}
        )
    return None


def _n(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
