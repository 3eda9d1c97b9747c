"""Flag rules: an answer that needs a person opens a worklist item (urgent ones push to the
care team at once), from the template's rules and the patient's own; crisis guidance per
organization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend import db
from backend.checkins.rules import Earlier, RuleError, evaluate, parse_rule, template_rules
from backend.checkins.templates import AnswerError, Template, parse_template
from backend.cli import cli
from backend.models import CaregiverGrant, Organization, Patient, Reminder, WorkItem
from backend.services.careplans import start_plan
from tests.conftest import Api, Clock, World, assert_error
from tests.test_checkin_templates import answer, good_vitals, make_template, vitals
from tests.test_checkins import phq9

GLUCOSE_RULES = [
    {"name": "glucose_low", "kind": "threshold", "item": "glucose", "op": "<", "value": 70},
    {"name": "glucose_high", "kind": "threshold", "item": "glucose", "op": ">", "value": 300},
    {
        "name": "critical_bp",
        "kind": "threshold",
        "item": "bp",
        "component": "systolic",
        "op": ">=",
        "value": 180,
        "urgent": True,
        "title": "Critical vital: systolic 180 or more",
    },
    {"name": "short_of_breath", "kind": "equals", "item": "breath", "value": "resting"},
]


GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]


def gad7(values: list[int]) -> dict[str, int]:
    return dict(zip(GAD7_ITEMS, values, strict=True))


def items(patient_id: int | None = None) -> list[WorkItem]:
    query = db.session.query(WorkItem).order_by(WorkItem.id)
    if patient_id is not None:
        query = query.filter_by(patient_id=patient_id)
    return list(query)


def urgent_pushes() -> list[tuple[str, int]]:
    rows = db.session.query(Reminder).filter_by(kind="urgent_flag").order_by(Reminder.id)
    return [(r.kind, r.user_id) for r in rows]


def submit(api: Api, patient_id: int, who: str, template: str, answers: dict[str, Any]) -> Any:
    r = answer(api, patient_id, who, template, answers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_low_glucose_in_mmol_per_litre_opens_a_worklist_item(api: Api, world: World) -> None:
    make_template(api, vitals(flag_rules=GLUCOSE_RULES))
    # 3.5 mmol/L is 63 mg/dL: below 70 after conversion
    body = submit(
        api, world.maria, "maria", "VITALS", good_vitals(glucose={"value": 3.5, "unit": "mmol/L"})
    )
    assert [(f["rule"], f["flag"], f["urgent"]) for f in body["raised"]] == [
        ("glucose_low", "checkin_flag", False)
    ]
    [item] = items(world.maria)
    assert (item.kind, item.urgent, item.status) == ("checkin_flag", False, "open")
    assert item.key == f"checkin:{body['id']}:glucose_low"
    assert item.title == "VITALS: glucose 63.06 mg/dL (< 70)"
    assert item.detail["response_id"] == body["id"] and item.detail["item"] == "glucose"
    assert item.detail["value"]["canonical_value"] == 63.06
    assert body["raised"][0]["work_item_id"] == item.id
    assert urgent_pushes() == []  # not urgent: the worklist shows it, nobody is woken
    # in range: nothing
    body = submit(api, world.maria, "maria", "VITALS", good_vitals(glucose=120))
    assert body["raised"] == [] and len(items()) == 1
    body = submit(api, world.maria, "maria", "VITALS", good_vitals(glucose=320))
    assert [f["rule"] for f in body["raised"]] == ["glucose_high"]


def test_a_critical_blood_pressure_is_urgent_and_pushes_priya(api: Api, world: World) -> None:
    make_template(api, vitals(flag_rules=GLUCOSE_RULES))
    body = submit(
        api,
        world.maria,
        "maria",
        "VITALS",
        good_vitals(bp={"systolic": 185, "diastolic": 100}, breath="resting"),
    )
    assert {f["rule"]: f["urgent"] for f in body["raised"]} == {
        "critical_bp": True,
        "short_of_breath": False,
    }
    urgent = [i for i in items(world.maria) if i.urgent]
    assert [(i.kind, i.title) for i in urgent] == [
        ("checkin_flag", "Critical vital: systolic 180 or more")
    ]
    assert urgent_pushes() == [("urgent_flag", world.users["priya"].id)]
    assert "crisis_guidance" not in body  # a vital, not a safety flag
    body = submit(
        api, world.maria, "maria", "VITALS", good_vitals(bp={"systolic": 179, "diastolic": 100})
    )
    assert body["raised"] == []


def test_phq9_item9_is_an_urgent_safety_item_with_crisis_guidance(api: Api, world: World) -> None:
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([0, 0, 0, 0, 0, 0, 0, 0, 2])["answers"])
    assert body["flags"] == ["safety"] and "988" in body["crisis_guidance"]
    assert [(f["rule"], f["flag"], f["urgent"]) for f in body["raised"]] == [
        ("phq9_item9", "safety", True)
    ]
    [item] = items(world.maria)
    assert (item.kind, item.urgent) == ("safety", True)
    assert item.detail["value"] == "LA6570-1"
    assert urgent_pushes() == [("urgent_flag", world.users["priya"].id)]
    # the guidance stays with the answer when it is read back
    again = api.get(f"/patients/{world.maria}/checkin-responses/{body['id']}", as_="priya")
    assert again.get_json()["crisis_guidance"] == body["crisis_guidance"]


def test_screener_totals_raise_non_urgent_flags(api: Api, world: World) -> None:
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([2, 2, 1, 1, 1, 1, 1, 1, 0])["answers"])
    assert (body["score"], body["flags"]) == (10, [])  # the scoring stays as it was
    assert [f["rule"] for f in body["raised"]] == ["phq9_total"]
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([2, 2, 1, 1, 1, 1, 1, 0, 0])["answers"])
    assert body["raised"] == []  # 9: mild
    body = submit(api, world.maria, "maria", "GAD-7", gad7([2, 2, 2, 1, 1, 1, 1]))
    assert [f["rule"] for f in body["raised"]] == ["gad7_total"]
    body = submit(api, world.maria, "maria", "PHQ-2", {"44250-9": 2, "44255-8": 1})
    assert [f["rule"] for f in body["raised"]] == ["phq2_positive"]
    assert [(i.kind, i.urgent) for i in items(world.maria)] == [("checkin_flag", False)] * 3
    assert urgent_pushes() == []


def test_social_needs_open_social_need_items_and_personal_safety_is_urgent(
    api: Api, world: World
) -> None:
    answers = {"food": True, "housing": False, "transport": True, "utilities": False}
    body = submit(api, world.maria, "maria", "SOCIAL-NEEDS", answers | {"safety": False})
    assert [f["rule"] for f in body["raised"]] == ["need_food", "need_transport"]
    assert [(i.kind, i.urgent, i.title) for i in items(world.maria)] == [
        ("social_need", False, "Social need: food"),
        ("social_need", False, "Social need: transport"),
    ]
    assert urgent_pushes() == []
    body = submit(
        api, world.chen, "priya", "SOCIAL-NEEDS", dict.fromkeys(answers, False) | {"safety": True}
    )
    [item] = items(world.chen)
    assert (item.kind, item.urgent, item.title) == (
        "social_need",
        True,
        "Social need: personal safety",
    )
    assert urgent_pushes() == [("urgent_flag", world.users["priya"].id)]


def test_a_hospital_visit_after_discharge_is_flagged(api: Api, world: World) -> None:
    body = submit(api, world.chen, "david", "POST-DISCHARGE", {"er_visit": False})
    assert body["raised"] == [] and items(world.chen) == []
    body = submit(
        api,
        world.chen,
        "david",
        "POST-DISCHARGE",
        {"er_visit": True, "er_visit_where": "County ER, last Tuesday"},
    )
    [item] = items(world.chen)
    assert (item.kind, item.urgent, item.title) == (
        "checkin_flag",
        False,
        "Hospital or ER visit since discharge",
    )
    assert item.detail["template"] == "POST-DISCHARGE"


def test_priya_adds_a_heart_failure_weight_rule_for_maria_only(
    api: Api, world: World, clock: Clock
) -> None:
    make_template(api, vitals("HF-DAILY"))
    priya = world.users["priya"].id
    plan = start_plan(db.session(), world.maria, {"title": "Heart failure"}, priya)
    db.session.commit()
    rule = {"name": "hf_weight_gain", "kind": "change", "item": "weight", "op": ">",
            "value": 2, "days": 3, "title": "Weight up more than 2 kg in 3 days"}  # fmt: skip
    r = api.post(
        f"/patients/{world.maria}/flag-rules",
        as_="priya",
        json={
            "template": "HF-DAILY",
            "rule": rule,
            "note": "Heart failure: daily weights",
            "care_plan_id": plan.id,
        },
    )
    assert r.status_code == 201, r.get_json()
    made = r.get_json()
    assert (made["care_plan_id"], made["created_by_user_id"]) == (plan.id, world.users["priya"].id)
    assert (made["template"], made["name"], made["active"]) == ("HF-DAILY", "hf_weight_gain", True)
    listed = api.get(f"/patients/{world.maria}/flag-rules", as_="maria").get_json()
    assert [x["id"] for x in listed] == [made["id"]]
    raised = []
    for kg in (80.0, 80.8, 81.4):  # +1.4 kg in 2 days: fine
        raised.append(
            submit(api, world.maria, "maria", "HF-DAILY", good_vitals(weight=kg))["raised"]
        )
        clock.advance(days=1)
    assert raised == [[], [], []]
    # day 4, in pounds: 82.6 kg, +2.6 against the lowest of the last 3 days (80.0 was 3 days ago)
    body = submit(
        api, world.maria, "maria", "HF-DAILY", good_vitals(weight={"value": 182.1, "unit": "lb"})
    )
    assert [f["rule"] for f in body["raised"]] == ["hf_weight_gain"]
    [item] = items(world.maria)
    assert item.title == "Weight up more than 2 kg in 3 days"
    assert item.detail["value"] == {"now": 82.6, "from": 80.0, "change": 2.6}
    # the same gain for Mr. Chen, who has no such rule, raises nothing
    for kg in (70.0, 73.0):
        assert submit(api, world.chen, "david", "HF-DAILY", good_vitals(weight=kg))["raised"] == []
        clock.advance(days=1)
    # the patient may read the nurse's rule but not switch it off
    assert_error(api.delete(f"/patients/{world.maria}/flag-rules/{made['id']}", as_="maria"), 403)
    # ended: no longer fires, and no longer listed
    r = api.delete(f"/patients/{world.maria}/flag-rules/{made['id']}", as_="priya")
    assert r.status_code == 204
    assert api.get(f"/patients/{world.maria}/flag-rules", as_="priya").get_json() == []
    assert_error(api.delete(f"/patients/{world.maria}/flag-rules/{made['id']}", as_="priya"), 404)
    body = submit(api, world.maria, "maria", "HF-DAILY", good_vitals(weight=86))
    assert body["raised"] == []


def test_a_patient_rule_overrides_or_switches_off_the_templates_rule(
    api: Api, world: World
) -> None:
    make_template(api, vitals(flag_rules=GLUCOSE_RULES))
    url = f"/patients/{world.maria}/flag-rules"
    tighter = {"name": "glucose_low", "kind": "threshold", "item": "glucose", "op": "<",
               "value": 80, "title": "Glucose under 80 (Maria's target)"}  # fmt: skip
    assert (
        api.post(url, as_="priya", json={"template": "VITALS", "rule": tighter}).status_code == 201
    )
    body = submit(api, world.maria, "maria", "VITALS", good_vitals(glucose=75))
    assert [f["title"] for f in body["raised"]] == ["Glucose under 80 (Maria's target)"]
    assert submit(api, world.chen, "priya", "VITALS", good_vitals(glucose=75))["raised"] == []
    # a second rule of the same name is a conflict; switching a rule off is a rule too
    assert_error(api.post(url, as_="priya", json={"template": "VITALS", "rule": tighter}), 409)
    off = {"template": "VITALS", "rule": {"name": "short_of_breath", "kind": "off"}}
    assert api.post(url, as_="priya", json=off).status_code == 201
    body = submit(api, world.maria, "maria", "VITALS", good_vitals(breath="resting"))
    assert body["raised"] == []
    # a band rule on a screener, for Maria: GAD-7 mild or worse
    band = {"template": "GAD-7", "rule": {"name": "gad7_mild", "kind": "band_at_least",
                                          "band": "mild"}}  # fmt: skip
    assert api.post(url, as_="priya", json=band).status_code == 201
    body = submit(api, world.maria, "maria", "GAD-7", gad7([1, 1, 1, 1, 1, 0, 0]))
    assert [(f["rule"], f["title"]) for f in body["raised"]] == [
        ("gad7_mild", "GAD-7 mild (score 5)")
    ]


def test_flag_rules_are_checked_and_the_safety_rule_cannot_be_touched(
    api: Api, world: World
) -> None:
    url = f"/patients/{world.maria}/flag-rules"
    before = db.session.query(WorkItem).count()
    for rule in (
        {"name": "phq9_item9", "kind": "off"},
        {"name": "phq9_item9", "kind": "threshold", "item": "44260-8", "op": ">", "value": 2},
    ):
        err = assert_error(
            api.post(url, as_="priya", json={"template": "PHQ-9", "rule": rule}), 422
        )
        assert "name" in err["errors"]["json"]["rule"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "kind": "off"}, "name"),  # no such template rule
        ({"name": "x", "kind": "threshold", "item": "nope", "op": ">", "value": 1}, "item"),
        ({"name": "x", "kind": "band_at_least", "band": "awful"}, "band"),
        (
            {"name": "x", "kind": "change", "item": "44250-9", "op": ">", "value": 1, "days": 3},
            "item",
        ),
        ({"name": "Bad Name", "kind": "score", "op": ">", "value": 1}, "name"),
        ({"name": "x", "kind": "score", "op": ">", "value": "ten"}, "value"),
    ]
    for bad, field in cases:
        err = assert_error(api.post(url, as_="priya", json={"template": "PHQ-9", "rule": bad}), 422)
        assert field in err["errors"]["json"]["rule"], (bad, err)
    err = assert_error(
        api.post(url, as_="priya", json={"template": "NOPE", "rule": cases[-1][0]}), 422
    )
    assert "template" in err["errors"]["json"]
    good = {"template": "PHQ-9", "rule": {"name": "phq9_mild", "kind": "band_at_least",
                                          "band": "mild"}}  # fmt: skip
    err = assert_error(api.post(url, as_="priya", json=good | {"care_plan_id": 99999}), 422)
    assert "care_plan_id" in err["errors"]["json"]
    assert_error(api.post(url, as_="ana", json=good), 403)
    assert_error(api.post(url, as_="omar", json=good), 404)
    assert api.get(url, as_="priya").get_json() == []
    assert db.session.query(WorkItem).count() == before
    # still: item 9 raises its safety item for Maria
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([0] * 8 + [1])["answers"])
    assert [f["rule"] for f in body["raised"]] == ["phq9_item9"]


def test_crisis_guidance_follows_the_patients_organization(
    api: Api, world: World, ctx: Any
) -> None:
    runner = ctx.test_cli_runner()
    org = "Riverside Community Health"
    texts = {
        "en": "Call the Riverside crisis line on 0800 111 222 at any time.",
        "es": "Llame a la línea de crisis de Riverside al 0800 111 222 a cualquier hora.",
    }
    for language, text in texts.items():
        result = runner.invoke(
            cli,
            args=["team", "crisis-guidance", "--org", org, "--language", language, "--text", text],
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, args=["team", "crisis-guidance", "--org", "Nowhere", "--clear"])
    assert result.exit_code != 0 and "no organization" in result.output
    db.session.expire_all()
    assert db.session.query(Organization).filter_by(name=org).one().crisis_guidance == texts
    maria = db.session.get(Patient, world.maria)
    assert maria is not None
    maria.language = "es-MX"
    db.session.commit()
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([0] * 8 + [1])["answers"])
    assert body["crisis_guidance"] == texts["es"]
    body = submit(api, world.chen, "priya", "PHQ-9", phq9([0] * 8 + [1])["answers"])
    assert body["crisis_guidance"] == texts["en"]  # Mr. Chen's language is en-US
    # a language the organization has no text in: its English text, never the US default
    maria.language = "fr"
    db.session.commit()
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([0] * 8 + [1])["answers"])
    assert body["crisis_guidance"] == texts["en"]
    result = runner.invoke(cli, args=["team", "crisis-guidance", "--org", org, "--clear"])
    assert result.exit_code == 0, result.output
    body = submit(api, world.maria, "maria", "PHQ-9", phq9([0] * 8 + [1])["answers"])
    assert "988" in body["crisis_guidance"]


# --- the rules and conditions themselves, without the API ------------------------------------


def _template(rules: list[dict[str, Any]]) -> Template:
    definition = vitals(flag_rules=rules)
    for item in definition["items"]:  # the API's names -> the definition's
        item["id"] = item.pop("code")
        if "answers" in item:
            item["options"] = item.pop("answers")
    return parse_template(definition)


def test_change_rules_look_back_only_within_their_window() -> None:
    drop = {"name": "weight_drop", "kind": "change", "item": "weight", "op": "<", "value": -3,
            "days": 7}  # fmt: skip
    template = _template([drop])
    rules = template_rules(template)
    at = datetime(2026, 11, 25, 9, tzinfo=UTC)
    now_answers = template.check_answers(good_vitals(weight=70))
    earlier = [
        Earlier(at - timedelta(days=8), template.check_answers(good_vitals(weight=90))),  # too old
        Earlier(at - timedelta(days=6), template.check_answers(good_vitals(weight=72.5))),
    ]
    assert evaluate(template, rules, now_answers, at=at, earlier=earlier) == []
    earlier.append(Earlier(at - timedelta(days=2), template.check_answers(good_vitals(weight=74))))
    [match] = evaluate(template, rules, now_answers, at=at, earlier=earlier)
    assert match.value == {"now": 70.0, "from": 74.0, "change": -4.0}
    assert match.title == "VITALS: weight -4 kg in 7 days (now 70 kg)"
    assert evaluate(template, rules, now_answers, at=at, earlier=[]) == []


def test_blood_pressure_components_and_multi_choice_rules() -> None:
    template = _template(
        [
            {"name": "dia", "kind": "threshold", "item": "bp", "component": "diastolic",
             "op": ">=", "value": 110},
            {"name": "dizzy", "kind": "equals", "item": "symptoms", "value": "dizzy"},
        ]
    )  # fmt: skip
    answers = template.check_answers(
        good_vitals(bp={"systolic": 150, "diastolic": 112}, symptoms=["cough", "dizzy"])
    )
    matches = evaluate(template, template_rules(template), answers)
    assert [(m.rule.name, m.title) for m in matches] == [
        ("dia", "VITALS: bp.diastolic 112 mm[Hg] (>= 110)"),
        ("dizzy", "VITALS: symptoms is dizzy"),
    ]
    with pytest.raises(RuleError) as exc:
        parse_rule(template, {"name": "x", "kind": "threshold", "item": "bp", "op": ">",
                              "value": 1})  # fmt: skip
    assert "component" in exc.value.errors


def test_a_condition_on_a_hidden_item_hides_its_own_dependents() -> None:
    template = parse_template(
        {
            "code": "CHAIN",
            "title": "Chain",
            "items": [
                {"id": "fell", "text": "Did you fall?", "type": "boolean"},
                {"id": "hurt", "text": "Were you hurt?", "type": "boolean",
                 "enable_when": {"item": "fell", "equals": True}},
                {"id": "where", "text": "Where?", "type": "multi_choice",
                 "enable_when": {"item": "hurt", "equals": True},
                 "options": [{"code": "head", "display": "Head"},
                             {"code": "hip", "display": "Hip"}]},
                {"id": "head_details", "text": "Tell us more", "type": "text",
                 "enable_when": {"item": "where", "equals": "head"}},
            ],
        }
    )  # fmt: skip
    assert template.check_answers({"fell": False}) == {"fell": False}
    with pytest.raises(AnswerError) as exc:
        template.check_answers({"fell": False, "where": ["hip"]})
    assert set(exc.value.errors) == {"where"}
    with pytest.raises(AnswerError) as exc:
        template.check_answers({"fell": True, "hurt": True, "where": ["hip", "head"]})
    assert exc.value.errors == {"head_details": "Missing."} and exc.value.only_missing
    full = {"fell": True, "hurt": True, "where": ["head"], "head_details": "A bump"}
    assert template.check_answers(full) == full
    # a bad answer to the controlling item is reported, its dependents are not guessed at
    with pytest.raises(AnswerError) as exc:
        template.check_answers({"fell": "yes", "hurt": True})
    assert set(exc.value.errors) == {"fell"}


def test_rules_on_answers_kept_from_caregivers_are_kept_from_them_too(
    api: Api, world: World
) -> None:
    grant = db.session.scalars(
        select(CaregiverGrant).where(CaregiverGrant.caregiver_user_id == world.users["ana"].id)
    ).one()
    grant.permissions = [*grant.permissions, "view_checkins"]
    db.session.commit()
    url = f"/patients/{world.maria}/flag-rules"
    rule = {"name": "housing_watch", "kind": "equals", "item": "housing", "value": True}
    made = api.post(url, as_="priya", json={"template": "SOCIAL-NEEDS", "rule": rule})
    assert made.status_code == 201, made.get_json()
    phq = {"name": "phq9_mild", "kind": "band_at_least", "band": "mild"}
    assert api.post(url, as_="priya", json={"template": "PHQ-9", "rule": phq}).status_code == 201
    assert [r["template"] for r in api.get(url, as_="maria").get_json()] == [
        "PHQ-9",
        "SOCIAL-NEEDS",
    ]
    # Ana may see check-ins now, but not what is watched on the social-needs screener
    assert [r["template"] for r in api.get(url, as_="ana").get_json()] == ["PHQ-9"]
