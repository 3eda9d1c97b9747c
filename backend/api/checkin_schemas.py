"""Request and response schemas of the check-in routes (``backend/api/checkins.py``).

Item and rule definitions are checked for shape here (unknown fields refused, JSON types not
coerced) and for sense by ``backend/checkins/templates.py`` and ``rules.py`` (does the
condition name an earlier item, does the rule's item hold a number…).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from backend.api.common import (
    BaseSchema,
    Choice,
    EchoSchema,
    Enum,
    Instant,
    Pattern,
    RecordId,
    Scalar,
    Union,
    trimmed,
)
from backend.checkins.rules import FLAGS, OPS, RULE_KINDS
from backend.checkins.templates import (
    CODE_PATTERN,
    ID_PATTERN,
    ITEM_TYPES,
    MAX_ITEMS,
    MAX_OPTIONS,
    MEASURES,
    TEXT_MAX_LENGTH,
    Item,
)
from backend.models.profile import SUPPORTED_LANGUAGES

MAX_ANSWERS = 100
MAX_RULES = 30


def template_organization_input() -> ma.fields.Integer:
    """Which organization's template ``template`` names, where two of the patient's
    organizations have that code (a 422 naming this field asks for it); leave it out for a
    built-in."""
    return RecordId(
        metadata={
            "description": "The organization whose template it is (its organization_id): "
            "needed only where two of the patient's organizations have a template with this "
            "code; never for a built-in"
        }
    )


def template_organization_output() -> ma.fields.Integer:
    return ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "The organization whose template it is; null for a built-in "
            "(template and template_organization_id name the template)"
        },
    )


# --- templates, as shown ----------------------------------------------------------------


class AnswerOptionSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "LA6569-3"})
    display = ma.fields.String(metadata={"example": "Several days"})
    value = ma.fields.Integer(allow_none=True, metadata={"example": 1})


class EnableWhenSchema(EchoSchema):
    item = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=40), metadata={"example": "er_visit"}
    )
    equals = Union(
        ma.fields.Float(),
        ma.fields.String(),
        ma.fields.Boolean(),
        required=True,
        metadata={"description": "The answer that shows the item (a multi_choice: includes)"},
    )


def _units(item: Item) -> list[str]:
    return [u.code for u in item.units()] if item.type == "quantity" else []


class TemplateItemSchema(ma.Schema):
    code = ma.fields.String(
        attribute="id",
        metadata={"description": "The item's key in answers (a LOINC code for the screeners)"},
    )
    text = ma.fields.String()
    type = ma.fields.String(validate=Choice("ItemType", list(ITEM_TYPES)))
    required = ma.fields.Boolean()
    answers = ma.fields.List(
        ma.fields.Nested(AnswerOptionSchema),
        attribute="options",
        metadata={"description": "The options of a choice or multi_choice item"},
    )
    min = ma.fields.Float(allow_none=True)
    max = ma.fields.Float(allow_none=True)
    measure = Enum("Measure", MEASURES, allow_none=True)
    unit = ma.fields.String(
        allow_none=True, metadata={"description": "Canonical UCUM unit (bounds and rules)"}
    )
    units = ma.fields.Function(
        _units,
        metadata={
            "description": "UCUM units an answer may be given in",
            "type": "array",
            "items": {"type": "string"},
        },
    )
    max_length = ma.fields.Function(
        lambda i: i.max_length if i.type == "text" else None,
        metadata={"description": "A text item's longest answer", "type": ["integer", "null"]},
    )
    enable_when = ma.fields.Nested(EnableWhenSchema, allow_none=True)
    loinc = ma.fields.String(allow_none=True)


# --- templates, as made ------------------------------------------------------------------


class AnswerOptionInSchema(BaseSchema):
    code = ma.fields.String(required=True, validate=Pattern(ID_PATTERN.pattern))
    display = ma.fields.String(required=True, validate=trimmed(200))
    value = ma.fields.Integer(
        allow_none=True,
        validate=ma.validate.Range(min=-100, max=100),
        metadata={"description": "A number for threshold rules"},
    )


class TemplateItemInSchema(BaseSchema):
    code = ma.fields.String(
        required=True,
        attribute="id",
        validate=Pattern(ID_PATTERN.pattern),
        metadata={"description": "The item's key in answers", "example": "glucose"},
    )
    text = ma.fields.String(required=True, validate=trimmed(500))
    type = ma.fields.String(required=True, validate=Choice("ItemType", ITEM_TYPES))
    required = ma.fields.Boolean(load_default=True)
    answers = ma.fields.List(
        ma.fields.Nested(AnswerOptionInSchema),
        attribute="options",
        validate=ma.validate.Length(max=MAX_OPTIONS),
    )
    min = ma.fields.Float(allow_nan=False, validate=ma.validate.Range(min=-1e6, max=1e6))
    max = ma.fields.Float(allow_nan=False, validate=ma.validate.Range(min=-1e6, max=1e6))
    measure = Enum("Measure", MEASURES)
    unit = ma.fields.String(validate=trimmed(20))
    max_length = ma.fields.Integer(validate=ma.validate.Range(min=1, max=TEXT_MAX_LENGTH))
    enable_when = ma.fields.Nested(EnableWhenSchema)
    loinc = ma.fields.String(validate=Pattern(r"^\d{1,7}-\d$"))


class FlagRuleDefSchema(EchoSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=60))
    kind = ma.fields.String(required=True, validate=Choice("FlagRuleKind", RULE_KINDS))
    flag = ma.fields.String(
        validate=Choice("Flag", FLAGS),
        load_default="checkin_flag",
        metadata={"optional": True, "description": "Default checkin_flag (a built-in's own)"},
    )
    urgent = ma.fields.Boolean(
        load_default=False, metadata={"optional": True, "description": "Default false"}
    )
    item = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    component = ma.fields.String(
        validate=Choice("BloodPressureComponent", ["systolic", "diastolic"])
    )
    op = ma.fields.String(validate=Choice("Operator", list(OPS)))
    value = Scalar(
        metadata={"description": "A number (threshold, score, change) or an answer (equals)"}
    )
    days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=30))
    band = ma.fields.String(validate=ma.validate.Length(min=1, max=30))
    title = ma.fields.String(validate=trimmed(200))

    @ma.validates("value")
    def _json_value(self, value: Any, **_: Any) -> None:
        if isinstance(value, dict | list) or value is None:
            raise ma.ValidationError("A number, a boolean or a string.")
        if isinstance(value, str) and not 1 <= len(value) <= 40:
            raise ma.ValidationError("At most 40 characters.")


class TemplateSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "PHQ-9"})
    title = ma.fields.String()
    loinc = ma.fields.String(
        allow_none=True, metadata={"description": "LOINC panel code", "example": "44249-1"}
    )
    builtin = ma.fields.Boolean()
    organization_id = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "Whose template: null for a built-in. Codes are unique within an "
            "organization, so (organization_id, code) names a template"
        },
    )
    caregiver_may_answer = ma.fields.Boolean()
    hidden_from_caregivers = ma.fields.Boolean(
        metadata={"description": "Caregivers never see the answers (SOCIAL-NEEDS)"}
    )
    max_score = ma.fields.Integer(allow_none=True)
    language = Enum(
        "TemplateLanguage",
        SUPPORTED_LANGUAGES,
        metadata={
            "description": "The language of this answer's title and texts: the reader's (their "
            "profile's language) where the template has it, else English, else its own"
        },
    )
    languages = ma.fields.List(
        Enum("TemplateLanguage", SUPPORTED_LANGUAGES),
        metadata={"description": "Every language the template can be read in, its own first"},
    )
    items = ma.fields.List(ma.fields.Nested(TemplateItemSchema))
    flag_rules = ma.fields.List(ma.fields.Nested(FlagRuleDefSchema))


class ItemTranslationInSchema(BaseSchema):
    text = ma.fields.String(required=True, validate=trimmed(500))
    answers = ma.fields.Dict(
        keys=ma.fields.String(validate=Pattern(ID_PATTERN.pattern)),
        values=ma.fields.String(validate=trimmed(200)),
        metadata={"description": "Every option's display, by option code"},
    )


class TranslationInSchema(BaseSchema):
    title = ma.fields.String(required=True, validate=trimmed(200))
    items = ma.fields.Dict(
        keys=ma.fields.String(validate=Pattern(ID_PATTERN.pattern)),
        values=ma.fields.Nested(ItemTranslationInSchema),
        required=True,
        metadata={"description": "Every item, by item code"},
    )


class TemplateCreateSchema(BaseSchema):
    code = ma.fields.String(
        required=True,
        validate=Pattern(CODE_PATTERN.pattern),
        metadata={"description": "Upper-case letters, digits, '-'", "example": "HF-DAILY"},
    )
    title = ma.fields.String(required=True, validate=trimmed(200))
    organization_id = RecordId(
        metadata={"description": "One of your organizations (needed if you have several)"}
    )
    caregiver_may_answer = ma.fields.Boolean(load_default=False)
    hidden_from_caregivers = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Caregivers never see the answers, whatever they were granted"},
    )
    items = ma.fields.List(
        ma.fields.Nested(TemplateItemInSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_ITEMS),
    )
    language = Enum(
        "TemplateLanguage",
        SUPPORTED_LANGUAGES,
        load_default="en",
        metadata={"description": "The language title and items are written in"},
    )
    translations = ma.fields.Dict(
        keys=Enum("TemplateLanguage", SUPPORTED_LANGUAGES),
        values=ma.fields.Nested(TranslationInSchema),
        load_default=dict,
        metadata={
            "description": "Complete translations by language: the title, every item's text "
            "and every option's display (a partial one is refused)"
        },
    )
    flag_rules = ma.fields.List(
        ma.fields.Nested(FlagRuleDefSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_RULES),
    )


# --- answers ---------------------------------------------------------------------------------


class QuantityAnswerSchema(BaseSchema):
    value = ma.fields.Float(required=True, metadata={"example": 5.4})
    unit = ma.fields.String(required=True, metadata={"example": "mmol/L"})


class StoredQuantitySchema(ma.Schema):
    value = ma.fields.Float(metadata={"description": "As given"})
    unit = ma.fields.String(metadata={"description": "As given"})
    canonical_value = ma.fields.Float(metadata={"description": "In the item's unit"})
    canonical_unit = ma.fields.String(metadata={"example": "mg/dL"})


class BloodPressureSchema(BaseSchema):
    systolic = ma.fields.Integer(required=True, metadata={"example": 150})
    diastolic = ma.fields.Integer(required=True, metadata={"example": 95})


def _answer(quantity: type[ma.Schema], **kwargs: Any) -> Union:
    """An answer by the item's type: boolean; choice (a code, or its number); multi_choice (a
    list of codes); scale (a number); quantity (a number in the item's unit, or value and
    unit); blood_pressure; date ("YYYY-MM-DD") or text (a string)."""
    return Union(
        ma.fields.Float(),
        ma.fields.String(),
        ma.fields.Boolean(),
        ma.fields.List(ma.fields.String()),
        ma.fields.Nested(quantity),
        ma.fields.Nested(BloodPressureSchema),
        **kwargs,
    )


class CheckinAnswersSchema(BaseSchema):
    template = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "Template code, e.g. PHQ-9", "example": "PHQ-2"},
    )
    template_organization_id = template_organization_input()
    answers = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=_answer(QuantityAnswerSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_ANSWERS),
        metadata={
            "description": "Item code -> answer: a LOINC answer code or its number for the "
            "screeners; true/false, an option code, a list of codes, a number, "
            '{"value", "unit"}, {"systolic", "diastolic"}, a date or text by item type',
            "example": {"44250-9": "LA6569-3", "44255-8": 2},
        },
    )


class RaisedFlagSchema(ma.Schema):
    rule = ma.fields.String(metadata={"example": "phq9_item9"})
    flag = ma.fields.String(validate=Choice("Flag", list(FLAGS)))
    urgent = ma.fields.Boolean()
    title = ma.fields.String()
    work_item_id = ma.fields.Integer(allow_none=True)


class CheckinResponseSchema(ma.Schema):
    id = ma.fields.Integer()
    patient_id = ma.fields.Integer()
    template = ma.fields.String(attribute="template_code", metadata={"example": "PHQ-2"})
    template_organization_id = template_organization_output()
    answers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=_answer(StoredQuantitySchema),
        metadata={
            "description": "Item code -> answer as stored (a screener: the LOINC answer code; "
            "a quantity: value and unit as given plus canonical_value and canonical_unit)"
        },
    )
    score = ma.fields.Integer(allow_none=True)
    band = ma.fields.String(allow_none=True, metadata={"example": "mild"})
    flags = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "safety (PHQ-9 item 9 above 0), positive_screen (PHQ-2 >= 3)"},
    )
    raised = ma.fields.List(
        ma.fields.Nested(RaisedFlagSchema),
        metadata={"description": "The flag rules that fired and the worklist items they opened"},
    )
    answered_by_user_id = ma.fields.Integer()
    on_behalf = ma.fields.Boolean(
        metadata={"description": "Entered by someone other than the patient"}
    )
    at = Instant()
    crisis_guidance = ma.fields.String(
        metadata={
            "description": "Only with a safety flag: what to do now, in the patient's language",
            "optional": True,
        }
    )


# --- a patient's flag rules ------------------------------------------------------------------


class FlagRuleCreateSchema(BaseSchema):
    template = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=40), metadata={"example": "HF-DAILY"}
    )
    template_organization_id = template_organization_input()
    rule = ma.fields.Nested(FlagRuleDefSchema, required=True)
    care_plan_id = RecordId(metadata={"description": "The care plan this rule serves"})
    note = ma.fields.String(validate=trimmed(500))


class FlagRuleSchema(ma.Schema):
    id = ma.fields.Integer()
    patient_id = ma.fields.Integer()
    template = ma.fields.String(attribute="template_code")
    template_organization_id = template_organization_output()
    name = ma.fields.String()
    rule = ma.fields.Nested(FlagRuleDefSchema)
    care_plan_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String(allow_none=True)
    created_by_user_id = ma.fields.Integer()
    created_at = Instant()
    active = ma.fields.Boolean()


class QuestionnaireResponseSchema(ma.Schema):
    """The FHIR R4 QuestionnaireResponse (documentation: the view returns the resource)."""

    resourceType = ma.fields.Constant("QuestionnaireResponse")
    id = ma.fields.String()
    questionnaire = ma.fields.String(metadata={"description": "Canonical URL"})
    status = ma.fields.Constant("completed")
    subject = ma.fields.Dict(metadata={"example": {"reference": "Patient/1"}})
    authored = ma.fields.String(metadata={"format": "date-time"})
    author = ma.fields.Dict()
    source = ma.fields.Dict()
    item = ma.fields.List(ma.fields.Dict())
