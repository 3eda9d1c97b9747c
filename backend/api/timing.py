"""The HL7 FHIR R4 ``Timing`` subset we schedule from, as a typed schema (``Timing`` in the
spec, with its enums: ``EventTiming`` for ``when``, ``TimingUnit``, ``DayOfWeek``).

The schema documents the shape; :func:`backend.schedule.timing.parse_timing` decides what is
accepted (it names the path inside the Timing in its errors) and the JSON is kept and sent
back exactly as given. ``id``, ``extension`` and the ``_element`` companions FHIR allows are
accepted too (``additionalProperties``).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from backend.api.common import Choice, EchoSchema, Pattern
from backend.schedule.timing import DAY_CODES, TIME_UNITS, WHEN_CODES, TimingError, parse_timing

# FHIR's own orders (the value sets' definitions), not alphabetical.
UNITS = tuple(u for u in ("s", "min", "h", "d", "wk", "mo", "a") if u in TIME_UNITS)
WHEN = tuple(
    code
    for code in (
        "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE",
        "EVE.early", "EVE.late", "NIGHT", "PHS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM",
        "ACD", "ACV", "PC", "PCM", "PCD", "PCV", "HS",
    )
    if code in WHEN_CODES
)  # fmt: skip
_FHIR_DATE_OR_TIME = (
    r"^\d{4}(-\d{2}(-\d{2}(T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)


class _Fhir(EchoSchema):
    class Meta:
        unknown = ma.INCLUDE  # id, extension, _element companions


class CodingSchema(_Fhir):
    system = ma.fields.String(
        metadata={"example": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"}
    )
    version = ma.fields.String()
    code = ma.fields.String(metadata={"example": "BID"})
    display = ma.fields.String()
    userSelected = ma.fields.Boolean()


class TimingCodeSchema(_Fhir):
    """A timing abbreviation (QD, BID, TID, QID, AM, PM, QOD, Q4H, Q6H, Q8H, BED, WK, MO)."""

    coding = ma.fields.List(ma.fields.Nested(CodingSchema))
    text = ma.fields.String(metadata={"example": "BID"})


class PeriodSchema(_Fhir):
    start = ma.fields.String(
        validate=Pattern(_FHIR_DATE_OR_TIME), metadata={"example": "2026-12-01"}
    )
    end = ma.fields.String(validate=Pattern(_FHIR_DATE_OR_TIME))


class DurationSchema(_Fhir):
    value = ma.fields.Float()
    comparator = ma.fields.String()
    unit = ma.fields.String()
    system = ma.fields.String(metadata={"example": "http://unitsofmeasure.org"})
    code = ma.fields.String(validate=Choice("TimingUnit", UNITS))


class TimingRepeatSchema(_Fhir):
    boundsPeriod = ma.fields.Nested(PeriodSchema)
    boundsDuration = ma.fields.Nested(DurationSchema)
    count = ma.fields.Integer(validate=ma.validate.Range(min=1))
    countMax = ma.fields.Integer(validate=ma.validate.Range(min=1))
    duration = ma.fields.Float()
    durationMax = ma.fields.Float()
    durationUnit = ma.fields.String(validate=Choice("TimingUnit", UNITS))
    frequency = ma.fields.Integer(validate=ma.validate.Range(min=1), metadata={"example": 2})
    frequencyMax = ma.fields.Integer(validate=ma.validate.Range(min=1))
    period = ma.fields.Float(metadata={"example": 1})
    periodMax = ma.fields.Float()
    periodUnit = ma.fields.String(
        validate=Choice("TimingUnit", UNITS), metadata={"description": "h, d, wk, mo or a"}
    )
    dayOfWeek = ma.fields.List(ma.fields.String(validate=Choice("DayOfWeek", DAY_CODES)))
    timeOfDay = ma.fields.List(
        ma.fields.String(validate=Pattern(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")),
        metadata={"example": ["08:00", "20:00"]},
    )
    when = ma.fields.List(
        ma.fields.String(validate=Choice("EventTiming", WHEN)),
        metadata={
            "description": "Moments of the patient's routine (wake, meals, bed time)",
            "example": ["CM", "CV"],
        },
    )
    offset = ma.fields.Integer(
        validate=ma.validate.Range(min=0), metadata={"description": "Minutes from `when`"}
    )


class TimingSchema(_Fhir):
    """An HL7 FHIR R4 Timing (http://hl7.org/fhir/R4/datatypes.html#Timing): explicit
    ``event`` instants, a ``repeat`` rule, or a ``code``."""

    event = ma.fields.List(
        ma.fields.String(metadata={"format": "date-time"}),
        metadata={"description": "Explicit instants, with their UTC offset"},
    )
    repeat = ma.fields.Nested(TimingRepeatSchema)
    code = ma.fields.Nested(TimingCodeSchema)


class FhirTiming(ma.fields.Nested):
    """A FHIR R4 Timing: documented by :class:`TimingSchema`, checked by the schedule engine
    (errors name the path inside it) and kept exactly as given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TimingSchema, **kwargs)

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> Any:
        if not isinstance(value, dict):
            raise ma.ValidationError("Not a valid mapping type.")
        try:
            parse_timing(value)
        except TimingError as exc:
            raise ma.ValidationError({exc.field or "(timing)": [exc.message]}) from None
        return value

    def _serialize(  # type: ignore[override]  # Nested and Field name the value differently
        self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any
    ) -> Any:
        return nested_obj
