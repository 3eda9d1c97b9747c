"""The console in a real Chromium against a live server with the demo's story: Priya works
her worklist, Omar finds nothing of María, a hostile name stays text, the keyboard reaches
every control, axe-core finds no serious or critical violation, and no page logs an error.

Screenshots of each page go to ``$CONSOLE_SCREENSHOTS`` (default: a pytest temp folder)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend import db
from backend.app import create_app
from backend.demo_story import tell
from backend.devtokens import personas
from backend.fixtures import load_fixtures
from backend.models import AccessLogEntry, CheckinSchedule, Enrollment, Patient, WorkItem
from tests.browser import AXE, Browser, LiveServer, skip_reason
from tests.conftest import START, Api, Clock, make_settings

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

XSS = "<img src=x onerror=alert(1)>"
SAFETY_PHQ9 = {
    "44250-9": 1,
    "44255-8": 1,
    "44259-0": 1,
    "44254-1": 1,
    "44251-7": 1,
    "44258-2": 1,
    "44252-5": 1,
    "44253-3": 1,
    "44260-8": 2,
}


@pytest.fixture(scope="module")
def live_app(engine: Engine) -> Flask:
    # The worklist asks for news every second here instead of every 30.
    return create_app(make_settings(), ENGINE=engine, TESTING=True, CONSOLE_POLL_SECONDS=1)


@pytest.fixture(scope="module")
def server(live_app: Flask) -> Iterator[LiveServer]:
    with LiveServer(live_app) as live:
        yield live


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def chromium(server: LiveServer, shots: Path) -> Iterator[Browser]:
    browser = Browser(server.url, shots)
    yield browser
    browser.quit()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    chromium.driver.get_log("browser")  # start each test with an empty console
    yield chromium
    # Sign out and leave the page, so its timers stop before the next test's data exists.
    chromium.driver.execute_script("window.sessionStorage.clear()")
    chromium.driver.get("about:blank")
    chromium.driver.get_log("browser")


@pytest.fixture
def story(ctx: Flask, live_app: Flask, clock: Clock) -> dict[str, Any]:
    """The demo's people and morning: María's misses and PHQ-9, Mr. Chen's discharge, Ana's
    message, the sweep."""
    loaded = load_fixtures(db.session())
    db.session.commit()
    tell(live_app, live_app.config["SETTINGS"], personas())
    db.session.expire_all()
    return {"patients": {k: p.id for k, p in loaded["patients"].items()}}


def _worklist_items(browser: Browser) -> list[Any]:
    browser.wait_for("ol.items li.item")
    return browser.find_all("ol.items li.item")


def test_priya_acknowledges_and_resolves_an_item_and_new_urgent_ones_appear(
    browser: Browser, story: dict[str, Any], live_app: Flask
) -> None:
    browser.sign_in("priya")
    assert browser.heading() == "Worklist"
    assert "Priya Natarajan" in browser.find("#who").text
    items = _worklist_items(browser)
    first = items[0]
    assert "María García" in first.text
    browser.screenshot("worklist-priya")

    # Filter by kind: only the missed doses remain.
    kind = browser.find("select[name=kind]")
    browser.driver.execute_script(
        "arguments[0].value = 'missed_doses'; arguments[0].dispatchEvent(new Event('change'))", kind
    )
    browser.wait_text("1 item.", "main .summary")
    assert [i.text.split("\n")[0] for i in _worklist_items(browser)] == [
        "3 missed doses in the last 7 days"
    ]
    browser.driver.execute_script(
        "arguments[0].value = ''; arguments[0].dispatchEvent(new Event('change'))", kind
    )
    browser.wait_text("4 items.", "main .summary")
    first = _worklist_items(browser)[0]

    item_id = int(first.get_attribute("data-item-id"))
    first.find_element("css selector", "button[aria-label^='Acknowledge']").click()
    browser.wait_text("acknowledged", f"li[data-item-id='{item_id}']")
    first = browser.find(f"li[data-item-id='{item_id}']")
    first.find_element("css selector", "button[aria-label^='Resolve']").click()
    note = browser.wait_for(f"li[data-item-id='{item_id}'] textarea[name=note]")
    note.send_keys("Called María; she is safe and sees Dr. Ortega tomorrow.")
    browser.screenshot("worklist-resolving")
    browser.find(f"li[data-item-id='{item_id}'] form button[type=submit]").click()
    browser.wait(lambda d: not browser.find_all(f"li[data-item-id='{item_id}']"))

    db.session.expire_all()
    item = db.session.get(WorkItem, item_id)
    assert item is not None and item.status == "resolved"
    assert item.resolution_note == "Called María; she is safe and sees Dr. Ortega tomorrow."

    # María answers item 9 above 0: the urgent item shows up on top without a reload.
    api = Api(live_app.test_client(), live_app, None)
    maria = story["patients"]["maria"]
    token = {"Authorization": f"Bearer {api.token('demo-maria')}"}
    answer = live_app.test_client().post(
        f"/patients/{maria}/checkin-responses",
        json={"template": "PHQ-9", "answers": SAFETY_PHQ9},
        headers=token,
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    browser.wait(lambda d: "new" in browser.find("ol.items li.item").get_attribute("class"))
    top = browser.find("ol.items li.item")
    assert "Urgent" in top.text and "María García" in top.text
    browser.screenshot("worklist-new-urgent")
    assert browser.console_errors() == []


def test_the_panel_lists_priyas_patients_and_finds_one_by_name(
    browser: Browser, story: dict[str, Any]
) -> None:
    browser.sign_in("priya")
    browser.find("nav a[href='/console/panel']").click()
    browser.wait_text("Showing 2 of 2 patients", "main .summary")
    names = [r.text for r in browser.find_all("table.panel tbody th")]
    assert sorted(names) == ["María García", "Wei Chen"]
    maria = browser.find(f"tr[data-patient-id='{story['patients']['maria']}']").text
    assert "PHQ-9 16" in maria and "moderately severe" in maria
    chen = browser.find(f"tr[data-patient-id='{story['patients']['chen']}']")
    assert chen.find_elements("css selector", "td")[-1].text == "2"
    browser.screenshot("panel-priya")
    _choose(browser, "sort", "discharge")  # sorted by the server: Wei Chen, discharged 2 days ago
    browser.wait(lambda d: _panel_names(browser) == ["Wei Chen", "María García"])
    _choose(browser, "sort", "score")
    browser.wait(lambda d: _panel_names(browser) == ["María García", "Wei Chen"])
    browser.find("input[name=search]").send_keys("wei")
    browser.wait_text("Showing 1 of 1 matching (2 on the panel)", "main .summary")
    assert [r.text for r in browser.find_all("table.panel tbody th")] == ["Wei Chen"]
    browser.find("table.panel tbody th a").click()
    browser.wait_text("Wei Chen", "main h1")
    assert browser.console_errors() == []


def _choose(browser: Browser, name: str, value: str) -> None:
    browser.driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))",
        browser.find(f"select[name={name}]"),
        value,
    )


def _panel_names(browser: Browser) -> list[str]:
    return [r.text for r in browser.find_all("table.panel tbody th")]


def test_a_large_panel_comes_a_page_at_a_time_and_logs_only_whom_it_shows(
    browser: Browser, story: dict[str, Any]
) -> None:
    maria = db.session.get(Patient, story["patients"]["maria"])
    assert maria is not None
    team = db.session.scalars(
        select(Enrollment.care_team_id).where(Enrollment.patient_id == maria.id)
    ).first()
    for i in range(120):
        extra = Patient(display_name=f"Zed {i:03d}", created_by_user_id=maria.created_by_user_id)
        db.session.add(extra)
        db.session.flush()
        db.session.add(Enrollment(care_team_id=team, patient_id=extra.id))
    db.session.commit()
    browser.sign_in("priya")
    browser.find("nav a[href='/console/panel']").click()
    browser.wait_text("Showing 100 of 122 patients.", "main .summary")
    logged = db.session.scalars(
        select(AccessLogEntry.patient_id).where(AccessLogEntry.action == "view_panel")
    ).all()
    assert len(logged) == len(set(logged)) == 100
    _choose(browser, "sort", "name")
    browser.wait(lambda d: _panel_names(browser)[:3] == ["María García", "Wei Chen", "Zed 000"])
    browser.find("div.more button").click()
    browser.wait_text("Showing 122 of 122 patients.", "main .summary")
    assert _panel_names(browser)[-1] == "Zed 119"
    assert browser.find_all("div.more button") == []
    browser.screenshot("panel-large")
    assert browser.console_errors() == []


def test_priya_works_in_marias_chart(
    browser: Browser, story: dict[str, Any], live_app: Flask
) -> None:
    maria = story["patients"]["maria"]
    browser.sign_in("priya")
    browser.open(f"/console/patients/{maria}")
    browser.wait_text("María García", "main h1")
    browser.wait_text("twice a day with breakfast and dinner", "#card-medicines + .card-body")
    # the next dose at its instant in her zone, written as the doses she logged are
    browser.wait_text("Nov 25, 2026, 7:00 PM EST — Metformin", "#card-coming-up + .card-body")
    browser.wait_text("PHQ-9 score over time", "main")
    browser.wait_for("main svg.chart polyline, main svg.chart circle")
    browser.wait_text("Mom has been forgetting her evening Metformin", "main")
    # adherence week by week: twelve bars drawn from /adherence/weekly, numbers in a table
    weekly = browser.wait_for("svg.chart[aria-label='Doses taken in each of the last 12 weeks']")
    assert len(weekly.find_elements("css selector", "rect")) == 12
    browser.screenshot("chart-priya-maria")

    # A GAD-7 for next Monday at 10:00 in María's zone.
    form = browser.find("form[aria-label='Schedule a check-in']")
    for name, value in (("template", "GAD-7"), ("repeat", "once"), ("weekday", "mon")):
        browser.driver.execute_script(
            "arguments[0].value = arguments[1]",
            form.find_element("css selector", f"select[name={name}]"),
            value,
        )
    form.find_element("css selector", "button[type=submit]").click()
    browser.wait_text("GAD-7: once, on the next Monday at 10:00", "#card-check-ins + .card-body")
    db.session.expire_all()
    (schedule,) = db.session.scalars(
        select(CheckinSchedule).where(CheckinSchedule.patient_id == maria)
    ).all()
    api = Api(live_app.test_client(), live_app, None)
    window = "from=2026-11-25T00:00:00Z&to=2026-12-20T00:00:00Z"
    path = f"/patients/{maria}/checkin-schedules/{schedule.id}/occurrences?{window}"
    (prompt,) = api.get(path, as_="demo-priya").get_json()
    local = datetime.fromisoformat(prompt["due_at"]).astimezone(ZoneInfo("America/New_York"))
    assert local.strftime("%A %H:%M") == "Monday 10:00"
    assert 0 < (local.date() - START.date()).days <= 7

    reply = browser.find("form[aria-label^='Reply'] textarea")
    reply.send_keys("I called your mother; we set an alarm for her evening dose.")
    browser.find("form[aria-label^='Reply'] button[type=submit]").click()
    browser.wait_text("we set an alarm for her evening dose", "#card-messages + .card-body")
    assert browser.console_errors() == []


def test_priya_adds_a_care_plan_activity_and_records_a_discharge(
    browser: Browser, story: dict[str, Any], live_app: Flask
) -> None:
    maria = story["patients"]["maria"]
    browser.sign_in("priya")
    browser.open(f"/console/patients/{maria}")
    form = browser.wait_for("form[aria-label='Add a care-plan activity']")
    form.find_element("css selector", "input[name=description]").send_keys("Weigh yourself <daily>")
    form.find_element("css selector", "input[name=frequency]").send_keys("every morning")
    form.find_element("css selector", "button[type=submit]").click()
    browser.wait_text("Weigh yourself <daily>, every morning", "#card-care-plan + .card-body")

    form = browser.find("form[aria-label='Record a discharge']")
    facility = form.find_element("css selector", "input[name=facility]")
    facility.send_keys("Riverside General Hospital")
    when = form.find_element("css selector", "input[name=discharged_at]")
    browser.driver.execute_script("arguments[0].value = '2026-11-24T11:00'", when)
    form.find_element("css selector", "input[name=reason]").send_keys("Hypoglycaemia")
    form.find_element("css selector", "button[type=submit]").click()
    browser.wait_text("Riverside General Hospital, discharged", "#card-discharges + .card-body")
    browser.wait_text("call 48h", "#card-discharges + .card-body")
    browser.screenshot("chart-actions")

    api = Api(live_app.test_client(), live_app, None)
    plan = api.get(f"/patients/{maria}/care-plan", as_="demo-priya").get_json()
    assert plan["activities"][-1]["description"] == "Weigh yourself <daily>"
    assert len(plan["activities"]) == 4  # the three before it are kept
    (discharge,) = api.get(f"/patients/{maria}/discharges", as_="demo-priya").get_json()
    assert discharge["reason"] == "Hypoglycaemia"
    assert browser.console_errors() == []


def test_omar_finds_nothing_of_maria(browser: Browser, story: dict[str, Any]) -> None:
    maria = story["patients"]["maria"]
    browser.sign_in("omar")
    browser.wait_for("main .summary")
    browser.wait(lambda d: browser.find("main .summary").text != "")
    assert "María" not in browser.find("main").text
    browser.find("nav a[href='/console/panel']").click()
    browser.wait(lambda d: "Showing" in browser.find("main .summary").text)
    assert "María" not in browser.find("main").text
    browser.screenshot("panel-omar")
    browser.open(f"/console/patients/{maria}")
    browser.wait_text("No such patient")
    hers = browser.find("main").text
    browser.screenshot("chart-omar-maria")
    browser.open("/console/patients/987654")
    browser.wait_text("No such patient")
    assert browser.find("main").text == hers
    assert "María" not in hers


def test_a_hostile_name_shows_as_text(browser: Browser, story: dict[str, Any]) -> None:
    maria = db.session.get(Patient, story["patients"]["maria"])
    assert maria is not None
    maria.display_name = XSS
    db.session.commit()
    browser.sign_in("priya")
    _worklist_items(browser)
    assert XSS in browser.find("ol.items").text
    assert browser.find_all("main img") == []
    browser.open(f"/console/patients/{maria.id}")
    browser.wait_text(XSS, "main h1")
    assert browser.find_all("main img") == []
    browser.screenshot("chart-hostile-name")
    assert browser.driver.execute_script("return document.title").startswith(XSS)
    assert browser.console_errors() == []


def test_the_keyboard_reaches_the_main_controls(browser: Browser, story: dict[str, Any]) -> None:
    browser.sign_in("priya")
    _worklist_items(browser)
    browser.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    skip = browser.tab_until(lambda el: el.get_attribute("class") == "skip-link")
    assert skip.text == "Skip to content"
    browser.tab_until(lambda el: el.text == "Panel")
    browser.tab_until(lambda el: el.text == "Sign out")
    browser.tab_until(lambda el: el.get_attribute("name") == "kind")
    browser.tab_until(lambda el: el.get_attribute("name") == "team_id")
    ack = browser.tab_until(
        lambda el: (el.get_attribute("aria-label") or "").startswith("Acknowledge")
    )
    item = ack.find_element("xpath", "ancestor::li")
    ack.send_keys("\ue007")  # Enter
    browser.wait_text("acknowledged", f"li[data-item-id='{item.get_attribute('data-item-id')}']")

    # To the panel, a search and a chart, by keyboard alone.
    browser.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    browser.tab_until(lambda el: el.text == "Panel").send_keys("\ue007")
    browser.wait_text("Showing 2 of 2 patients", "main .summary")
    browser.tab_until(lambda el: el.get_attribute("name") == "search").send_keys("wei")
    browser.wait_text("Showing 1 of 1 matching", "main .summary")
    browser.tab_until(lambda el: el.text == "Wei Chen").send_keys("\ue007")
    browser.wait_text("Wei Chen", "main h1")
    browser.wait_for("form[aria-label='Schedule a check-in']")
    browser.tab_until(lambda el: el.text == "Schedule", limit=120)
    browser.tab_until(
        lambda el: el.text == "Send reply" or el.text == "Record discharge", limit=120
    )


def test_without_the_emulator_the_page_says_sign_in_is_not_configured(
    browser: Browser, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in production: no emulator mode, so no persona picker and no development token.
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")
    settings = make_settings(firebase_auth_emulator_host=None, env="development")
    with LiveServer(create_app(settings, ENGINE=engine, TESTING=True)) as other:
        browser.driver.get(f"{other.url}/console/")
        browser.wait_text("Sign-in is not configured on this server")
        assert browser.find_all("select[name=persona]") == []
        browser.screenshot("sign-in-not-configured")
        browser.driver.get(f"{other.url}/console/worklist")
        browser.wait_text("Sign-in is not configured on this server")
        assert browser.console_errors() == []


@pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed: npm ci --prefix tests/browser"
)
def test_axe_finds_no_serious_violation_on_any_page(
    browser: Browser, story: dict[str, Any]
) -> None:
    browser.open("/console/")
    browser.wait_for("select[name=persona]")
    pages: dict[str, Any] = {"sign-in": browser.axe()}
    browser.screenshot("sign-in")
    browser.sign_in("priya")
    _worklist_items(browser)
    pages["worklist"] = browser.axe()
    maria = story["patients"]["maria"]
    browser.open(f"/console/patients/{maria}")
    browser.wait_text("María García", "main h1")
    pages["chart"] = browser.axe()
    browser.open("/console/panel")
    browser.wait_for("main h1")
    pages["panel"] = browser.axe()
    assert {name: [v["id"] for v in found] for name, found in pages.items()} == {
        name: [] for name in pages
    }
    assert browser.console_errors() == []
    db.session.expire_all()
    assert db.session.scalars(select(Patient)).first() is not None
