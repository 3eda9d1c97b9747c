"""Scoring of the built-in instruments (PHQ-2, PHQ-9, GAD-7) against their bands, the item-9
safety flag, partial answers, and the built-in definitions against their FHIR source."""

from __future__ import annotations

import json

import pytest

from backend.checkins import convert
from backend.checkins.instruments import (
    PHQ9_ITEM9,
    POSITIVE_SCREEN,
    SAFETY,
    Instrument,
    builtins,
    score,
)
from backend.checkins.templates import AnswerError
from tests.shared_data import FHIR, require


def _answers(instrument: Instrument, values: list[int]) -> dict[str, str]:
    """Answer codes for the given item values, in item order."""
    assert len(values) == len(instrument.items)
    return {i.loinc: i.code_of(v) for i, v in zip(instrument.items, values, strict=True)}


def _spread(total: int, n: int, item9_zero_at: int | None = None) -> list[int]:
    """n item values (0..3) summing to total, filled from the first item."""
    values = []
    left = total
    for k in range(n):
        v = 0 if k == item9_zero_at else min(3, left)
        values.append(v)
        left -= v
    assert left == 0
    return values


PHQ9_BANDS = [
    (0, "none"),
    (4, "none"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately_severe"),
    (19, "moderately_severe"),
    (20, "severe"),
    (24, "severe"),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_BANDS)
def test_phq9_bands_at_every_edge(total: int, band: str) -> None:
    phq9 = builtins()["PHQ-9"]
    result = score(phq9, _answers(phq9, _spread(total, 9, item9_zero_at=8)))
    assert (result.total, result.band, result.flags, result.complete) == (total, band, (), True)


def test_phq9_maximum_is_27_severe_with_the_safety_flag() -> None:
    phq9 = builtins()["PHQ-9"]
    assert phq9.max_total == 27
    result = score(phq9, _answers(phq9, [3] * 9))
    assert (result.total, result.band, result.flags) == (27, "severe", (SAFETY,))


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_item9_above_zero_is_a_safety_flag_whatever_the_total(item9: int) -> None:
    phq9 = builtins()["PHQ-9"]
    result = score(phq9, _answers(phq9, [0] * 8 + [item9]))
    assert result.total == item9
    assert result.band == "none"
    assert result.flags == (SAFETY,)


def test_item9_by_number_and_the_flag_survives_a_partial_answer() -> None:
    phq9 = builtins()["PHQ-9"]
    result = score(phq9, {PHQ9_ITEM9: 2})
    assert result.complete is False
    assert (result.total, result.band) == (None, None)
    assert result.flags == (SAFETY,)
    assert len(result.missing) == 8


GAD7_BANDS = [
    (0, "none"),
    (4, "none"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "severe"),
    (21, "severe"),
]


@pytest.mark.parametrize(("total", "band"), GAD7_BANDS)
def test_gad7_bands_at_every_edge(total: int, band: str) -> None:
    gad7 = builtins()["GAD-7"]
    result = score(gad7, _answers(gad7, _spread(total, 7)))
    assert (result.total, result.band, result.flags) == (total, band, ())


def test_gad7_item2_more_days_than_not_scores_2() -> None:
    gad7 = builtins()["GAD-7"]
    item2 = gad7.items[1]
    assert item2.value_of("LA18938-3") == 2
    assert item2.value_of("LA6570-1") is None  # not an option of that item
    answers = {i.loinc: "LA6568-5" for i in gad7.items} | {item2.loinc: "LA18938-3"}
    assert score(gad7, answers).total == 2


@pytest.mark.parametrize(
    ("values", "band", "flags"),
    [
        ([0, 0], "negative", ()),
        ([1, 1], "negative", ()),
        ([2, 0], "negative", ()),
        ([2, 1], "positive", (POSITIVE_SCREEN,)),
        ([3, 0], "positive", (POSITIVE_SCREEN,)),
        ([3, 3], "positive", (POSITIVE_SCREEN,)),
    ],
)
def test_phq2_three_or_more_is_a_positive_screen(
    values: list[int], band: str, flags: tuple[str, ...]
) -> None:
    phq2 = builtins()["PHQ-2"]
    assert [i.loinc for i in phq2.items] == ["44250-9", "44255-8"]
    result = score(phq2, _answers(phq2, values))
    assert (result.total, result.band, result.flags) == (sum(values), band, flags)


def test_partial_answers_are_not_scored_and_name_the_missing_items() -> None:
    gad7 = builtins()["GAD-7"]
    answers = _answers(gad7, [1] * 7)
    del answers[gad7.items[3].loinc]
    result = score(gad7, answers)
    assert result.complete is False
    assert (result.total, result.band) == (None, None)
    assert result.missing == (gad7.items[3].loinc,)


def test_bad_answers_and_unknown_items_name_the_item() -> None:
    phq9 = builtins()["PHQ-9"]
    with pytest.raises(AnswerError) as exc:
        score(phq9, {"44250-9": "LA9999-9", "12345-6": 1, "44255-8": 4, "44259-0": True})
    assert set(exc.value.errors) == {"44250-9", "12345-6", "44255-8", "44259-0"}


def test_the_builtin_definitions_match_the_fhir_source() -> None:
    source = require(FHIR / "questionnaires")
    committed = json.loads(convert.BUILTIN_FILE.read_text(encoding="utf-8"))
    assert convert.derive(source) == committed


def test_the_fhir_source_is_a_valid_r4b_questionnaire() -> None:
    source = require(FHIR / "questionnaires")
    questionnaire = pytest.importorskip("fhir.resources.R4B.questionnaire")
    for name in convert.SOURCES.values():
        data = json.loads((source / name).read_text(encoding="utf-8"))
        parsed = questionnaire.Questionnaire.model_validate(data)
        assert parsed.item
