"""Check-in templates in the reader's language: the built-in screeners in their official
Spanish wording, organizations' templates with complete translations, English as the
fallback, and the answer's ``language`` saying which. SQLite and (TEST_DATABASE_URL)
PostgreSQL.

María reads Spanish (es-US); Ana, Priya and David read English.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, World, assert_error

NEVER = ["Ningún día", "Varios días", "Más de la mitad de los días", "Casi todos los días"]


def template(api: Api, code: str, who: str) -> dict[str, Any]:
    r = api.get(f"/checkin-templates/{code}", as_=who)
    assert r.status_code == 200, r.get_json()
    return dict(r.get_json())


def test_maria_reads_the_phq9_in_its_official_spanish_and_ana_in_english(
    api: Api, world: World
) -> None:
    es = template(api, "PHQ-9", "maria")
    assert (es["language"], es["languages"]) == ("es", ["en", "es"])
    assert es["title"] == "Cuestionario sobre la salud del paciente-9 (PHQ-9)"
    assert es["items"][0]["text"] == "Poco interés o placer en hacer cosas"
    assert es["items"][8]["text"] == (
        "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera"
    )
    assert [a["display"] for a in es["items"][0]["answers"]] == NEVER
    en = template(api, "PHQ-9", "ana")
    assert en["language"] == "en"
    assert en["items"][0]["text"] == "Little interest or pleasure in doing things"
    # Only the words differ: the codes and scores an answer uses are the same.
    for a, b in zip(es["items"], en["items"], strict=True):
        assert a["code"] == b["code"]
        assert [(o["code"], o["value"]) for o in a["answers"]] == [
            (o["code"], o["value"]) for o in b["answers"]
        ]
    gad = template(api, "GAD-7", "maria")
    assert gad["language"] == "es"
    assert gad["items"][1]["text"] == "No ha sido capaz de parar o controlar su preocupación"


def test_without_an_official_translation_maria_gets_english_and_is_told_so(
    api: Api, world: World
) -> None:
    for code in ("SOCIAL-NEEDS", "POST-DISCHARGE"):
        body = template(api, code, "maria")
        assert (body["language"], body["languages"]) == ("en", ["en"]), code
    listed = {
        t["code"]: t["language"] for t in api.get("/checkin-templates", as_="maria").get_json()
    }
    assert listed == {
        "PHQ-2": "es",
        "PHQ-9": "es",
        "GAD-7": "es",
        "SOCIAL-NEEDS": "en",
        "POST-DISCHARGE": "en",
    }


def test_a_spanish_answer_to_the_phq9_scores_as_the_english_one(api: Api, world: World) -> None:
    items = template(api, "PHQ-9", "maria")["items"]
    answers = {i["code"]: 1 for i in items} | {items[8]["code"]: 0}
    r = api.post(
        f"/patients/{world.maria}/checkin-responses",
        as_="maria",
        json={"template": "PHQ-9", "answers": answers},
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["score"] == 8


def _weight(**extra: Any) -> dict[str, Any]:
    return {
        "code": "WEIGHT-CHECK",
        "title": "Daily weight",
        "items": [
            {"code": "weight", "text": "Your weight this morning", "type": "quantity",
             "measure": "weight"},
            {"code": "breath", "text": "Short of breath?", "type": "choice",
             "answers": [{"code": "no", "display": "No"}, {"code": "yes", "display": "Yes"}]},
        ],
        **extra,
    }  # fmt: skip


SPANISH = {
    "title": "Peso diario",
    "items": {
        "weight": {"text": "Su peso esta mañana"},
        "breath": {"text": "¿Le falta el aire?", "answers": {"no": "No", "yes": "Sí"}},
    },
}


def test_an_organizations_template_carries_its_translations(api: Api, world: World) -> None:
    r = api.post("/checkin-templates", as_="priya", json=_weight(translations={"es": SPANISH}))
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["language"], r.get_json()["languages"]) == ("en", ["en", "es"])
    es = template(api, "WEIGHT-CHECK", "maria")
    assert (es["language"], es["title"]) == ("es", "Peso diario")
    assert [a["display"] for a in es["items"][1]["answers"]] == ["No", "Sí"]
    assert template(api, "WEIGHT-CHECK", "ana")["title"] == "Daily weight"


def test_a_partial_translation_is_refused_naming_what_is_missing(api: Api, world: World) -> None:
    half = {"title": "Peso diario", "items": {"weight": {"text": "Su peso esta mañana"}}}
    err = assert_error(
        api.post("/checkin-templates", as_="priya", json=_weight(translations={"es": half})), 422
    )
    missing = err["errors"]["json"]["translations"]["es"]["items"]
    assert set(missing) == {"breath"}
    wrong = {**SPANISH, "items": {**SPANISH["items"], "pulse": {"text": "Pulso"}}}
    err = assert_error(
        api.post("/checkin-templates", as_="priya", json=_weight(translations={"es": wrong})), 422
    )
    assert "pulse" in err["errors"]["json"]["translations"]["es"]["items"]
    # A translation into the template's own language says nothing new.
    err = assert_error(
        api.post("/checkin-templates", as_="priya", json=_weight(translations={"en": SPANISH})),
        422,
    )
    assert "en" in err["errors"]["json"]["translations"]
    assert api.get("/checkin-templates/WEIGHT-CHECK", as_="priya").status_code == 404


def test_a_template_written_in_spanish_only_is_read_in_spanish_by_everyone(
    api: Api, world: World
) -> None:
    body = {
        "code": "PESO",
        "title": "Peso diario",
        "language": "es",
        "items": [{"code": "weight", "text": "Su peso esta mañana", "type": "quantity",
                   "measure": "weight"}],
    }  # fmt: skip
    assert api.post("/checkin-templates", as_="priya", json=body).status_code == 201
    for who in ("ana", "maria"):
        got = template(api, "PESO", who)
        assert (got["language"], got["title"]) == ("es", "Peso diario")
