"""Parse and validate an HL7 FHIR R4 ``Timing`` (as in ``Dosage.timing``) into a schedule plan.

Pure: no Flask, no database. ``parse_timing(json) -> Timing`` or ``TimingError(field, message)``
where ``field`` is a JSON path inside the Timing (``"repeat.periodUnit"``, ``"repeat.when[0]"``,
``""`` for the Timing itself). The JSON is kept exactly as given (``Timing.to_fhir()``).

What is accepted
----------------
- ``repeat`` with ``frequency`` (default 1) per ``period`` ``periodUnit`` where the unit is
  ``h``, ``d``, ``wk``, ``mo`` or ``a``; ``dayOfWeek``; ``timeOfDay`` (``HH:MM`` or
  ``HH:MM:SS``); ``when`` (+ ``offset`` minutes) resolved against the patient's routine;
  ``boundsPeriod`` (dates, partial dates ``YYYY``/``YYYY-MM`` or dateTimes with an offset);
  ``boundsDuration``; ``count``/``countMax``; ``duration``/``durationMax``/``durationUnit``
  (kept as information: how long one administration lasts); ``id`` and ``extension``
  (non-modifier, so ignorable) and the ``_element`` companions of primitives.
- ``timeOfDay``, ``when`` or ``dayOfWeek`` without a period mean "every day" (period 1 d).
- ``repeat`` holding only ``count: 1`` (and maybe bounds/duration): a single administration
  at the start (the medication's anchor or the bounds start).
- ``code`` (the timing-abbreviation value set: QD, BID, TID, QID, AM, PM, QOD, Q1H, Q2H, Q3H,
  Q4H, Q6H, Q8H, BED, WK, MO) from ``coding`` with the system
  ``http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation`` (or no system), or a ``text``
  that is exactly one of those abbreviations. It is used only when ``repeat`` holds no
  schedule of its own (``repeat.bounds[x]`` still applies over the code, as FHIR says).
  AM = ``when MORN``, PM = ``when AFT`` (GTS: "every afternoon"), BED = ``when HS``.
- ``event`` alone: explicit instants; each must be a full dateTime with a UTC offset.

Range choices (documented, deterministic): ``frequencyMax`` is taken (the schedule has the
permitted maximum number of doses per period), ``periodMax`` is ignored (``period``, the
shortest interval, is used), ``countMax`` is taken. Both range maxima are kept on the
``Timing`` for display.

What is refused (TimingError naming the field)
----------------------------------------------
- unknown keys, wrong JSON types, ``modifierExtension`` (must be understood; none are);
- ``periodUnit`` ``s``/``min`` (sub-hourly rates are infusions, not reminders), intervals
  shorter than one hour, non-integer periods in ``d``/``wk``/``mo``/``a``;
- ``frequency``/``count``/``frequencyMax``/``countMax`` not a positive integer, ``period`` not
  a positive number, ``offset`` not a non-negative integer;
- FHIR invariants tim-1 (duration needs durationUnit), tim-2 (period needs periodUnit),
  tim-6/7/8 (…Max needs its base), tim-9 (offset needs when, and not C/CM/CD/CV),
  tim-10 (timeOfDay and when together);
- unknown ``when``/``dayOfWeek`` codes, duplicates, malformed times (``25:00``);
- ``boundsRange`` (no meaning for a dose schedule), two bounds at once;
- ``event`` together with ``repeat`` or ``code`` (ambiguous), date-only events;
- shapes whose doses would be a guess: ``frequency`` not matching the number of
  ``timeOfDay``/``when`` entries per dosing day (``frequency 1`` with ``when C`` - which
  meal?), n doses per m days that do not fall on evenly spaced days ("2 per 3 d"; "2 per 4 d"
  = every 2nd day is fine; weeks are spread, see ``expand``), more than one dose per
  month/year without times, more than 24 doses a day, ``dayOfWeek`` with an hourly, monthly,
  yearly or multi-day period, ``when`` with an hourly period, more than one ``timeOfDay``
  with an hourly period, a ``timeOfDay`` with an elapsed interval (Q5H);
- a repeat with nothing to schedule (e.g. only ``duration``: one continuous infusion).

The plan kinds (see ``expand.py`` for the times they produce): ``calendar`` (dosing days x
slots per day), ``grid`` (hourly interval dividing a day: a wall-clock grid), ``elapsed``
(hourly interval not dividing a day: fixed elapsed steps), ``events`` and ``once``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

__all__ = [
    "ABBREVIATIONS",
    "DAY_CODES",
    "GTS_SYSTEM",
    "WHEN_CODES",
    "Slot",
    "Timing",
    "TimingError",
    "parse_timing",
]

GTS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
UCUM_SYSTEM = "http://unitsofmeasure.org"

DAY_CODES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHEN_CODES: frozenset[str] = frozenset(
    {
        "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late",
        "EVE", "EVE.early", "EVE.late", "NIGHT", "PHS", "WAKE", "HS",
        "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC", "PCM", "PCD", "PCV",
    }
)  # fmt: skip
#: tim-9: no offset with these (the dose is *at* the meal).
NO_OFFSET_WHEN: frozenset[str] = frozenset({"C", "CM", "CD", "CV"})
#: The generic meal codes stand for the three meals.
GENERIC_MEAL_WHEN: dict[str, tuple[str, str, str]] = {
    "C": ("CM", "CD", "CV"),
    "AC": ("ACM", "ACD", "ACV"),
    "PC": ("PCM", "PCD", "PCV"),
}
TIME_UNITS: frozenset[str] = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
SCHEDULE_UNITS: frozenset[str] = frozenset({"h", "d", "wk", "mo", "a"})

#: The timing-abbreviation value set, expanded into the ``repeat`` it stands for.
ABBREVIATIONS: dict[str, dict[str, Any]] = {
    "QD": {"frequency": 1, "period": 1, "periodUnit": "d"},
    "BID": {"frequency": 2, "period": 1, "periodUnit": "d"},
    "TID": {"frequency": 3, "period": 1, "periodUnit": "d"},
    "QID": {"frequency": 4, "period": 1, "periodUnit": "d"},
    "AM": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]},
    "PM": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["AFT"]},
    "BED": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]},
    "QOD": {"frequency": 1, "period": 2, "periodUnit": "d"},
    "Q1H": {"frequency": 1, "period": 1, "periodUnit": "h"},
    "Q2H": {"frequency": 1, "period": 2, "periodUnit": "h"},
    "Q3H": {"frequency": 1, "period": 3, "periodUnit": "h"},
    "Q4H": {"frequency": 1, "period": 4, "periodUnit": "h"},
    "Q6H": {"frequency": 1, "period": 6, "periodUnit": "h"},
    "Q8H": {"frequency": 1, "period": 8, "periodUnit": "h"},
    "WK": {"frequency": 1, "period": 1, "periodUnit": "wk"},
    "MO": {"frequency": 1, "period": 1, "periodUnit": "mo"},
}

_ROOT_KEYS = frozenset({"id", "extension", "event", "repeat", "code"})
_REPEAT_KEYS = frozenset(
    {
        "id", "extension", "boundsDuration", "boundsRange", "boundsPeriod", "count", "countMax",
        "duration", "durationMax", "durationUnit", "frequency", "frequencyMax", "period",
        "periodMax", "periodUnit", "dayOfWeek", "timeOfDay", "when", "offset",
    }
)  # fmt: skip
#: Keys of ``repeat`` that say *when* (as opposed to bounds, count and duration).
_SCHEDULE_KEYS = frozenset(
    {"frequency", "frequencyMax", "period", "periodMax", "periodUnit", "dayOfWeek",
     "timeOfDay", "when", "offset"}
)  # fmt: skip
_PERIOD_KEYS = frozenset({"id", "extension", "start", "end"})
_DURATION_KEYS = frozenset({"id", "extension", "value", "comparator", "unit", "system", "code"})
_CODE_KEYS = frozenset({"id", "extension", "coding", "text"})
_CODING_KEYS = frozenset(
    {"id", "extension", "system", "version", "code", "display", "userSelected"}
)

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-](0\d|1[0-4]):[0-5]\d)$"
)

MAX_DOSES_PER_DAY = 24


class TimingError(ValueError):
    """A Timing we refuse: ``field`` is the JSON path inside the Timing, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field or 'timing'}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Slot:
    """One dose within a dosing day.

    ``kind``: ``"time"`` (a wall-clock ``time``), ``"when"`` (a routine event ``code`` with
    ``offset`` minutes) or ``"default"`` (dose ``index`` of ``of`` on a day without given
    times; see ``expand.default_times``).
    """

    kind: Literal["time", "when", "default"]
    time: time | None = None
    code: str | None = None
    offset: int | None = None
    index: int = 0
    of: int = 0


@dataclass(frozen=True)
class Timing:
    """A validated Timing: the FHIR elements (normalised) plus the plan ``expand`` follows.

    ``kind``:
      - ``calendar``: dosing days (``unit`` d/wk/mo/a, every ``step`` units, optionally only on
        ``day_of_week``, ``day_offsets`` within a d/wk cycle) x ``slots`` per dosing day;
      - ``grid``: an hourly interval ``interval_minutes`` that divides 24 h, laid on the wall
        clock from ``grid_phase`` (or the routine's wake time when ``None``);
      - ``elapsed``: an hourly interval that does not divide a day, in elapsed time;
      - ``events``: the explicit ``events`` instants;
      - ``once``: one administration at the start.
    """

    kind: Literal["calendar", "grid", "elapsed", "events", "once"]
    source: dict[str, Any] = field(compare=False, repr=False)
    # FHIR elements (normalised; ranges kept for display)
    frequency: int | None = None
    frequency_max: int | None = None
    period: Decimal | None = None
    period_max: Decimal | None = None
    period_unit: str | None = None
    day_of_week: tuple[str, ...] = ()
    time_of_day: tuple[time, ...] = ()
    when: tuple[str, ...] = ()
    offset: int | None = None
    bounds_start: date | datetime | None = None  # date: the start of that local day
    bounds_end: date | datetime | None = None  # date: through the end of that local day
    bounds_duration: tuple[Decimal, str] | None = None
    count: int | None = None
    count_max: int | None = None
    duration: Decimal | None = None
    duration_max: Decimal | None = None
    duration_unit: str | None = None
    code: str | None = None  # the abbreviation the schedule came from, if it came from `code`
    events: tuple[datetime, ...] = ()
    # the plan
    unit: str | None = None  # calendar and grid (always "d"): d | wk | mo | a
    step: int = 1  # calendar: every `step` units
    day_offsets: tuple[int, ...] = (0,)  # calendar d/wk without dayOfWeek: days in the cycle
    slots: tuple[Slot, ...] = ()
    interval_minutes: int | None = None  # grid / elapsed
    grid_phase: time | None = None

    @property
    def max_count(self) -> int | None:
        """The number of occurrences the schedule stops after (``countMax`` if given)."""
        return self.count_max if self.count_max is not None else self.count

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR JSON exactly as it was given."""
        return copy.deepcopy(self.source)


# --------------------------------------------------------------------------- helpers


# Plausible ranges. A schedule beyond them is a typing mistake, and near them date
# arithmetic overflows: every number at most MAX_QUANTITY (a period of 100,000 hours is over
# eleven years), an offset at most a day, every date in 1900-2199 (as instants in requests).
MAX_QUANTITY = 100_000
MAX_OFFSET_MINUTES = 24 * 60
YEARS = range(1900, 2200)
MAX_SPAN_DAYS = 100 * 366
_UNIT_DAYS = {
    "s": Decimal(1) / 86400,
    "min": Decimal(1) / 1440,
    "h": Decimal(1) / 24,
    "d": Decimal(1),
    "wk": Decimal(7),
    "mo": Decimal(31),
    "a": Decimal(366),
}


def _plausible_year(value: date | datetime, path: str, raw: Any) -> None:
    if value.year not in YEARS:
        raise TimingError(path, f"must fall in the years 1900-2199, got {raw!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_int(obj: dict[str, Any], key: str, path: str) -> int | None:
    if key not in obj:
        return None
    value = obj[key]
    if not _is_int(value) or value < 1:
        raise TimingError(f"{path}{key}", f"must be a positive integer, got {value!r}")
    if value > MAX_QUANTITY:
        raise TimingError(f"{path}{key}", f"must be at most {MAX_QUANTITY}, got {value!r}")
    return int(value)


def _decimal(obj: dict[str, Any], key: str, path: str, *, positive: bool = True) -> Decimal | None:
    if key not in obj:
        return None
    value = obj[key]
    if not _is_number(value):
        raise TimingError(f"{path}{key}", f"must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:  # pragma: no cover - str() of a JSON number parses
        raise TimingError(f"{path}{key}", f"not a number: {value!r}") from exc
    if not result.is_finite() or (positive and result <= 0) or result < 0:
        raise TimingError(f"{path}{key}", f"must be a positive number, got {value!r}")
    if result > MAX_QUANTITY:
        raise TimingError(f"{path}{key}", f"must be at most {MAX_QUANTITY}, got {value!r}")
    return result


def _check_keys(obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in obj:
        base = key[1:] if key.startswith("_") else key
        if key == "modifierExtension":
            raise TimingError(
                f"{path}{key}", "modifier extensions change the meaning and are not supported"
            )
        if base not in allowed or (key.startswith("_") and base in {"id", "extension"}):
            raise TimingError(f"{path}{key}", "unknown or unsupported element")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TimingError(path, f"must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise TimingError(path, "must be a non-empty JSON array")
    return value


def parse_time(value: Any, path: str) -> time:
    """``HH:MM`` or ``HH:MM:SS`` (24-hour) to a ``time``."""
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise TimingError(path, f"must be a time HH:MM[:SS] between 00:00 and 23:59, got {value!r}")
    return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def _parse_datetime(value: str, path: str) -> datetime:
    if not _DATETIME_RE.match(value):
        raise TimingError(
            path, f"a date with a time needs seconds and a UTC offset (RFC 3339), got {value!r}"
        )
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TimingError(path, f"not a valid dateTime: {value!r}") from exc
    _plausible_year(found, path, value)
    return found


def _parse_bound(value: Any, path: str, *, end: bool) -> date | datetime:
    """A FHIR date/dateTime bound. Partial dates widen: a start to the first day, an end to the
    last day (FHIR: an end includes everything that matches it)."""
    if not isinstance(value, str):
        raise TimingError(path, f"must be a date or dateTime string, got {value!r}")
    if "T" in value:
        return _parse_datetime(value, path)
    match = _DATE_RE.match(value)
    if match is None:
        raise TimingError(path, f"must be YYYY, YYYY-MM, YYYY-MM-DD or a dateTime, got {value!r}")
    year, month, day = match.group(1), match.group(2), match.group(3)
    try:
        first = date(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise TimingError(path, f"not a valid date: {value!r}") from exc
    _plausible_year(first, path, value)
    if not end or day:
        return first
    span = relativedelta(months=1) if month else relativedelta(years=1)
    last: date = first + span - relativedelta(days=1)
    return last


def _ends_before_start(start: date | datetime, end: date | datetime) -> bool:
    """Instants compare as instants; otherwise compare calendar days (a dateTime by the date
    written in it), since the patient's zone is not known here."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return end < start
    start_day = start.date() if isinstance(start, datetime) else start
    end_day = end.date() if isinstance(end, datetime) else end
    return end_day < start_day


# --------------------------------------------------------------------------- parsing


def parse_timing(data: Any) -> Timing:
    """Validate a FHIR R4 Timing JSON object and build its plan, or raise ``TimingError``."""
    root = _object(data, "")
    _check_keys(root, _ROOT_KEYS, "")
    source = copy.deepcopy(root)
    if "extension" in root and not isinstance(root["extension"], list):
        raise TimingError("extension", "must be a JSON array")

    if "event" in root:
        if "repeat" in root or "code" in root:
            raise TimingError(
                "event",
                "explicit events together with a repeat or code are ambiguous; "
                "give either the events or the repeating schedule",
            )
        events = []
        for i, raw in enumerate(_list(root["event"], "event")):
            path = f"event[{i}]"
            if not isinstance(raw, str) or "T" not in raw:
                raise TimingError(path, f"must be a dateTime with a time and UTC offset: {raw!r}")
            events.append(_parse_datetime(raw, path))
        ordered = tuple(sorted(set(events)))
        return Timing(kind="events", source=source, events=ordered)

    repeat: dict[str, Any] = {}
    if "repeat" in root:
        repeat = _object(root["repeat"], "repeat")
        _check_keys(repeat, _REPEAT_KEYS, "repeat.")
        if "extension" in repeat and not isinstance(repeat["extension"], list):
            raise TimingError("repeat.extension", "must be a JSON array")

    code: str | None = None
    schedule_from_code = not (_SCHEDULE_KEYS & repeat.keys())
    if "code" in root:
        code_obj = _object(root["code"], "code")
        _check_keys(code_obj, _CODE_KEYS, "code.")
        if schedule_from_code:
            code = _abbreviation(code_obj)
    elif not repeat:
        raise TimingError("repeat", "a Timing needs a repeat, a code or events")

    fields = dict(repeat)
    if code is not None:
        fields.update(ABBREVIATIONS[code])
    return _parse_repeat(fields, source, code)


def _abbreviation(code_obj: dict[str, Any]) -> str:
    codings = code_obj.get("coding", [])
    if not isinstance(codings, list):
        raise TimingError("code.coding", "must be a JSON array")
    for i, coding in enumerate(codings):
        coding = _object(coding, f"code.coding[{i}]")
        _check_keys(coding, _CODING_KEYS, f"code.coding[{i}].")
        system = coding.get("system")
        value = coding.get("code")
        if system in (None, GTS_SYSTEM) and isinstance(value, str) and value in ABBREVIATIONS:
            return value
    text = code_obj.get("text")
    if isinstance(text, str) and text.strip().upper() in ABBREVIATIONS:
        return text.strip().upper()
    known = ", ".join(ABBREVIATIONS)
    where = "code.coding" if codings else "code.text" if "text" in code_obj else "code"
    raise TimingError(where, f"not a supported timing abbreviation (supported: {known})")


def _parse_repeat(rep: dict[str, Any], source: dict[str, Any], code: str | None) -> Timing:
    p = "repeat."
    frequency = _positive_int(rep, "frequency", p)
    frequency_max = _positive_int(rep, "frequencyMax", p)
    period = _decimal(rep, "period", p)
    period_max = _decimal(rep, "periodMax", p)
    period_unit = rep.get("periodUnit")
    count = _positive_int(rep, "count", p)
    count_max = _positive_int(rep, "countMax", p)
    duration = _decimal(rep, "duration", p, positive=False)
    duration_max = _decimal(rep, "durationMax", p, positive=False)
    duration_unit = rep.get("durationUnit")
    offset: int | None = None
    if "offset" in rep:
        if not _is_int(rep["offset"]) or not 0 <= rep["offset"] <= MAX_OFFSET_MINUTES:
            raise TimingError(
                "repeat.offset", "must be an integer from 0 to 1440 (minutes, at most a day)"
            )
        offset = int(rep["offset"])

    # --- units and FHIR invariants
    if period_unit is not None and period_unit not in TIME_UNITS:
        raise TimingError(
            "repeat.periodUnit", f"unknown unit {period_unit!r} (s, min, h, d, wk, mo, a)"
        )
    if period_unit in {"s", "min"}:
        raise TimingError(
            "repeat.periodUnit",
            f"periods in {period_unit!r} are not supported: schedules repeat at most hourly "
            "(sub-hourly rates describe an infusion, not doses to remind)",
        )
    if duration_unit is not None and duration_unit not in TIME_UNITS:
        raise TimingError("repeat.durationUnit", f"unknown unit {duration_unit!r}")
    if duration is not None and duration_unit is None:
        raise TimingError("repeat.durationUnit", "required with duration (tim-1)")
    if duration_max is not None and duration is None:
        raise TimingError("repeat.durationMax", "needs duration (tim-7)")
    if duration_unit is not None and duration is None and duration_max is None:
        raise TimingError("repeat.duration", "durationUnit without a duration")
    if period is not None and period_unit is None:
        raise TimingError("repeat.periodUnit", "required with period (tim-2)")
    if period_unit is not None and period is None:
        raise TimingError("repeat.period", "periodUnit without a period")
    if period_max is not None:
        if period is None:
            raise TimingError("repeat.periodMax", "needs period (tim-6)")
        if period_max < period:
            raise TimingError("repeat.periodMax", "must not be less than period")
    if frequency_max is not None and frequency_max < (frequency or 1):
        raise TimingError("repeat.frequencyMax", "must not be less than frequency")
    if count_max is not None:
        if count is None:
            raise TimingError("repeat.countMax", "needs count (tim-8)")
        if count_max < count:
            raise TimingError("repeat.countMax", "must not be less than count")
    if (frequency is not None or frequency_max is not None) and period is None:
        raise TimingError("repeat.period", "frequency needs a period and periodUnit")

    # --- times of day, when, days of week
    times: list[time] = []
    if "timeOfDay" in rep:
        for i, raw in enumerate(_list(rep["timeOfDay"], "repeat.timeOfDay")):
            value = parse_time(raw, f"repeat.timeOfDay[{i}]")
            if value in times:
                raise TimingError(f"repeat.timeOfDay[{i}]", f"duplicate time {raw!r}")
            times.append(value)
    whens: list[str] = []
    if "when" in rep:
        for i, raw in enumerate(_list(rep["when"], "repeat.when")):
            if not isinstance(raw, str) or raw not in WHEN_CODES:
                raise TimingError(
                    f"repeat.when[{i}]", f"unknown event code {raw!r} (EventTiming codes)"
                )
            if raw in whens:
                raise TimingError(f"repeat.when[{i}]", f"duplicate code {raw!r}")
            whens.append(raw)
        for generic, meals in GENERIC_MEAL_WHEN.items():
            overlap = [m for m in meals if m in whens]
            if generic in whens and overlap:
                raise TimingError(
                    f"repeat.when[{whens.index(overlap[0])}]",
                    f"{overlap[0]!r} is already included in {generic!r}",
                )
    if times and whens:
        raise TimingError("repeat.when", "timeOfDay and when cannot both be given (tim-10)")
    if offset is not None:
        if not whens:
            raise TimingError("repeat.offset", "an offset needs a when code (tim-9)")
        for i, w in enumerate(whens):
            if w in NO_OFFSET_WHEN:
                raise TimingError(
                    "repeat.offset",
                    f"no offset with when {w!r} at repeat.when[{i}]: the dose is at the meal "
                    "(tim-9); use AC*/PC* for before/after",
                )
    days: list[str] = []
    if "dayOfWeek" in rep:
        for i, raw in enumerate(_list(rep["dayOfWeek"], "repeat.dayOfWeek")):
            if not isinstance(raw, str) or raw not in DAY_CODES:
                raise TimingError(f"repeat.dayOfWeek[{i}]", f"unknown day {raw!r} (mon..sun)")
            if raw in days:
                raise TimingError(f"repeat.dayOfWeek[{i}]", f"duplicate day {raw!r}")
            days.append(raw)
    days.sort(key=DAY_CODES.index)

    # --- bounds
    bounds_start: date | datetime | None = None
    bounds_end: date | datetime | None = None
    bounds_duration: tuple[Decimal, str] | None = None
    present = [k for k in ("boundsDuration", "boundsRange", "boundsPeriod") if k in rep]
    if len(present) > 1:
        raise TimingError(f"repeat.{present[1]}", "only one of bounds[x] may be given")
    if "boundsRange" in rep:
        raise TimingError(
            "repeat.boundsRange", "not supported: use boundsPeriod (dates) or boundsDuration"
        )
    if "boundsPeriod" in rep:
        bp = _object(rep["boundsPeriod"], "repeat.boundsPeriod")
        _check_keys(bp, _PERIOD_KEYS, "repeat.boundsPeriod.")
        if "start" in bp:
            bounds_start = _parse_bound(bp["start"], "repeat.boundsPeriod.start", end=False)
        if "end" in bp:
            bounds_end = _parse_bound(bp["end"], "repeat.boundsPeriod.end", end=True)
        if (
            bounds_start is not None
            and bounds_end is not None
            and _ends_before_start(bounds_start, bounds_end)
        ):
            raise TimingError("repeat.boundsPeriod.end", "ends before it starts")
    if "boundsDuration" in rep:
        bounds_duration = _parse_duration(rep["boundsDuration"], "repeat.boundsDuration")

    common: dict[str, Any] = {
        "source": source,
        "frequency": frequency,
        "frequency_max": frequency_max,
        "period": period,
        "period_max": period_max,
        "period_unit": period_unit,
        "day_of_week": tuple(days),
        "time_of_day": tuple(times),
        "when": tuple(whens),
        "offset": offset,
        "bounds_start": bounds_start,
        "bounds_end": bounds_end,
        "bounds_duration": bounds_duration,
        "count": count,
        "count_max": count_max,
        "duration": duration,
        "duration_max": duration_max,
        "duration_unit": duration_unit,
        "code": code,
    }

    # --- the plan
    doses = frequency_max if frequency_max is not None else frequency  # None: not given
    if period is None:
        if times or whens or days:
            period, period_unit = Decimal(1), "d"  # "at 09:00" = every day at 09:00
        elif count is not None:
            if (count_max or count) != 1:
                raise TimingError(
                    "repeat.period", "a count above 1 needs a period to space the doses"
                )
            return Timing(kind="once", **common)
        else:
            raise TimingError(
                "repeat.period",
                "nothing to schedule: give period+periodUnit, timeOfDay, when, dayOfWeek or "
                "count 1 (a duration alone describes one continuous administration)",
            )

    assert period_unit is not None
    if period_unit == "h":
        return _hourly_plan(common, period, doses, times, whens, days)
    if period != period.to_integral_value():
        raise TimingError(
            "repeat.period", f"must be a whole number of {period_unit!r}, got {period}"
        )
    return _calendar_plan(common, period_unit, int(period), doses, times, whens, days, offset)


def _parse_duration(value: Any, path: str) -> tuple[Decimal, str]:
    obj = _object(value, path)
    _check_keys(obj, _DURATION_KEYS, f"{path}.")
    if "comparator" in obj:
        raise TimingError(f"{path}.comparator", "a comparator makes the bound vague")
    amount = _decimal(obj, "value", f"{path}.")
    if amount is None:
        raise TimingError(f"{path}.value", "required")
    system = obj.get("system")
    if system is not None and system != UCUM_SYSTEM:
        raise TimingError(f"{path}.system", f"must be {UCUM_SYSTEM}")
    unit = obj.get("code", obj.get("unit"))
    field_name = "code" if "code" in obj else "unit"
    if unit not in TIME_UNITS:
        raise TimingError(f"{path}.{field_name}", f"must be a unit of time, got {unit!r}")
    if unit in {"d", "wk", "mo", "a"} and amount != amount.to_integral_value():
        raise TimingError(f"{path}.value", f"must be a whole number of {unit!r}")
    days = amount * _UNIT_DAYS[unit]
    if days > MAX_SPAN_DAYS:
        raise TimingError(f"{path}.value", "must be at most 100 years")
    return amount, str(unit)


def _frequency_field(common: dict[str, Any]) -> str:
    """The element that set the number of doses (frequencyMax wins when given)."""
    return "repeat.frequencyMax" if common["frequency_max"] is not None else "repeat.frequency"


def _when_slots(whens: list[str], offset: int | None) -> tuple[Slot, ...]:
    """One slot per code; the generic meal codes C/AC/PC become their three meals."""
    codes = [c for w in whens for c in GENERIC_MEAL_WHEN.get(w, (w,))]
    return tuple(Slot(kind="when", code=c, offset=offset) for c in codes)


def _time_slots(times: list[time]) -> tuple[Slot, ...]:
    return tuple(Slot(kind="time", time=t) for t in sorted(times))


def _default_slots(n: int) -> tuple[Slot, ...]:
    if n > MAX_DOSES_PER_DAY:
        raise TimingError(
            "repeat.frequency", f"more than {MAX_DOSES_PER_DAY} doses a day without times"
        )
    return tuple(Slot(kind="default", index=i + 1, of=n) for i in range(n))


def _spread(cycle_days: int, dosing_days: int) -> tuple[int, ...]:
    """Dosing days spread over a cycle: day ``floor(i * cycle / n)`` for ``i < n``."""
    return tuple((i * cycle_days) // dosing_days for i in range(dosing_days))


def _calendar_plan(
    common: dict[str, Any],
    unit: str,
    step: int,
    doses: int | None,
    times: list[time],
    whens: list[str],
    days: list[str],
    offset: int | None,
) -> Timing:
    given = _time_slots(times) if times else _when_slots(whens, offset) if whens else ()
    k = len(given)
    freq_field = _frequency_field(common)

    def mismatch(expected: str) -> TimingError:
        return TimingError(
            freq_field, f"frequency {doses} per {step} {unit} does not match {expected}"
        )

    if unit in {"mo", "a"}:
        if days:
            raise TimingError("repeat.dayOfWeek", f"dayOfWeek with periodUnit {unit!r}")
        if given:
            if doses is not None and doses != k:
                raise mismatch(f"the {k} time(s) of day given")
            slots = given
        else:
            if doses is not None and doses != 1:
                raise TimingError(
                    freq_field,
                    f"{doses} doses per {step} {unit} without times: the days are ambiguous "
                    "(give one dose per period, or use days/weeks)",
                )
            slots = _default_slots(1)
        return Timing(kind="calendar", unit=unit, step=step, slots=slots, **common)

    if days:
        if unit == "d":
            if step != 1:
                raise TimingError(
                    "repeat.dayOfWeek", f"dayOfWeek with a period of {step} days is ambiguous"
                )
            if given:
                if doses is not None and doses != k:
                    raise mismatch(f"the {k} time(s) of day given")
                slots = given
            else:
                slots = _default_slots(doses or 1)
        else:  # wk: frequency counts doses per `step` weeks
            n_days = len(days)
            if given:
                if doses is not None and doses != n_days * k:
                    raise mismatch(f"{n_days} day(s) x {k} time(s) of day")
                slots = given
            else:
                if doses is not None and doses % n_days:
                    raise mismatch(f"the {n_days} day(s) of the week given")
                slots = _default_slots((doses or n_days) // n_days)
        return Timing(kind="calendar", unit=unit, step=step, slots=slots, **common)

    cycle = step if unit == "d" else 7 * step
    if given:
        dosing_days = 1 if doses is None else doses // k
        if doses is not None and (doses % k or dosing_days > cycle):
            raise mismatch(f"the {k} time(s) of day given")
        slots = given
    else:
        n = doses or 1
        if n <= cycle:
            dosing_days, slots = n, _default_slots(1)
        elif n % cycle == 0:
            dosing_days, slots = cycle, _default_slots(n // cycle)
        else:
            raise TimingError(
                freq_field, f"{n} doses per {cycle} days cannot be split into whole days"
            )
    if unit == "d" and cycle % dosing_days:
        # e.g. "2 per 3 days": which days is a guess; refuse rather than invent.
        raise TimingError(
            freq_field,
            f"{doses} doses per {cycle} days do not fall on evenly spaced days; "
            "use hours, dayOfWeek or a period in weeks",
        )
    return Timing(
        kind="calendar",
        unit=unit,
        step=step,
        day_offsets=_spread(cycle, dosing_days),
        slots=slots,
        **common,
    )


def _hourly_plan(
    common: dict[str, Any],
    period: Decimal,
    doses: int | None,
    times: list[time],
    whens: list[str],
    days: list[str],
) -> Timing:
    if whens:
        raise TimingError("repeat.when", "when codes need a daily (or longer) period, not hours")
    if days:
        raise TimingError("repeat.dayOfWeek", "dayOfWeek with an hourly period is not supported")
    n = doses or 1
    minutes = period * 60 / n
    freq_field = _frequency_field(common)
    if minutes < 60:
        raise TimingError(
            freq_field if n > 1 else "repeat.period",
            "doses more often than once an hour are not supported",
        )
    if minutes != minutes.to_integral_value():
        raise TimingError(freq_field, "the interval between doses is not a whole minute")
    interval = int(minutes)
    if len(times) > 1:
        raise TimingError(
            "repeat.timeOfDay", "with an hourly period give at most one timeOfDay (the first dose)"
        )
    phase = times[0] if times else None
    if 1440 % interval == 0:
        return Timing(
            kind="grid", unit="d", step=1, interval_minutes=interval, grid_phase=phase, **common
        )
    if interval % 1440 == 0:
        slots = _time_slots([phase]) if phase else ()
        return Timing(
            kind="calendar",
            unit="d",
            step=interval // 1440,
            slots=slots or (Slot(kind="when", code="WAKE"),),
            **common,
        )
    if phase is not None:
        raise TimingError(
            "repeat.timeOfDay",
            "a timeOfDay only fits an hourly interval that divides a day or a whole number of days",
        )
    return Timing(kind="elapsed", interval_minutes=interval, **common)


# Parsed timings by their canonical JSON. Parsing is pure and a Timing is immutable, and the
# same few shapes (QD, BID with meals, a daily check-in ...) recur across thousands of
# medicines and schedules, so a view need not re-validate each one on every request.
# Bounded: cleared when full.
_PARSED: dict[str, Timing] = {}
_PARSED_MAX = 4096


def cached_timing(data: Any) -> Timing:
    """:func:`parse_timing`, remembered by the JSON's canonical form (raises as it does; a
    refused shape is not kept)."""
    try:
        key = json.dumps(data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not plain JSON (never so once stored): no caching
        return parse_timing(data)
    timing = _PARSED.get(key)
    if timing is None:
        timing = parse_timing(data)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = timing
    return timing
