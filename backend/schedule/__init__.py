"""Pure schedule expansion for medications: FHIR R4 ``Timing`` in, dose occurrences out.

No Flask, no database. ``parse_timing`` validates a Timing (``TimingError(field, message)``
names the JSON path it refuses), ``expand`` turns it into occurrences for a window in the
patient's zone (DST per RFC 5545, ``local``/``home`` time-zone policy), ``doses_per_day`` gives
the average rate for days of supply. The rules are in the docstrings of ``timing`` and
``expand``.
"""

from backend.schedule.expand import (
    AC_DEFAULT_OFFSET,
    DEFAULT_ROUTINE,
    PC_DEFAULT_OFFSET,
    Occurrence,
    Routine,
    day_pattern,
    default_times,
    doses_per_day,
    expand,
    resolve_local,
    when_minutes,
)
from backend.schedule.timing import (
    ABBREVIATIONS,
    GTS_SYSTEM,
    WHEN_CODES,
    Slot,
    Timing,
    TimingError,
    parse_timing,
)

__all__ = [
    "ABBREVIATIONS",
    "AC_DEFAULT_OFFSET",
    "DEFAULT_ROUTINE",
    "GTS_SYSTEM",
    "PC_DEFAULT_OFFSET",
    "WHEN_CODES",
    "Occurrence",
    "Routine",
    "Slot",
    "Timing",
    "TimingError",
    "day_pattern",
    "default_times",
    "doses_per_day",
    "expand",
    "parse_timing",
    "resolve_local",
    "when_minutes",
]
