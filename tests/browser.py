"""Driving the console in a real Chromium: the system's ``chromium`` and ``chromedriver``
(Debian packages; ``.ci/run`` installs them) through Selenium, against the app served on
127.0.0.1 by werkzeug in a thread of the test process (so the injected clock and the test
database are the server's too). axe-core comes from npm (``tests/browser``, ``npm ci``)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AXE = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WAIT = 15.0  # seconds a page may take to show something, on a loaded 2-CPU machine

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - selenium is in the dev extra
    webdriver = None  # type: ignore[assignment]


def skip_reason() -> str | None:
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)"
    return None


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


class Browser:
    """One Chromium; ``b.open("/console/")``, ``b.find("css")``, ``b.wait_text("…")``."""

    def __init__(self, base: str, shots: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,1000",
            "--lang=en-US",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
        self.driver = webdriver.Chrome(options=options, service=service)
        self.base = base
        self.shots = shots

    def quit(self) -> None:
        self.driver.quit()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition: Any, timeout: float = WAIT) -> Any:
        # The page redraws lists: an element found a moment ago may be gone; look again.
        return WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.05,
            ignored_exceptions=(StaleElementReferenceException,),
        ).until(condition)

    def wait_for(self, css: str, timeout: float = WAIT) -> WebElement:
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), timeout)

    def wait_text(self, text: str, css: str = "main", timeout: float = WAIT) -> None:
        try:
            self.wait(lambda d: text in d.find_element(By.CSS_SELECTOR, css).text, timeout)
        except TimeoutException:
            raise AssertionError(
                f"{text!r} never appeared in {css}: {self.find(css).text!r}"
            ) from None

    def heading(self) -> str:
        return self.wait_for("main h1").text

    def sign_in(self, persona: str) -> None:
        self.open("/console/")
        picker = self.wait_for("select[name=persona]")
        self.driver.execute_script("arguments[0].value = arguments[1]", picker, persona)
        self.find("form button[type=submit]").click()
        self.wait_text("Signed in as", "#who")

    def sign_out(self) -> None:
        self.find("#who button").click()
        self.wait_for("select[name=persona]")

    def screenshot(self, name: str) -> Path:
        """The whole page (the window is stretched to the page's height for the shot)."""
        path = self.shots / f"{name}.png"
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, min(max(int(height), 1000), 6000))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 1000)
        return path

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the page as it is now."""
        self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify(String(e))));"
        )
        violations = json.loads(result)
        assert isinstance(violations, list), violations
        return [v for v in violations if v["impact"] in ("serious", "critical")]

    def tab_until(self, matches: Any, limit: int = 60) -> WebElement:
        """Press Tab until the focused element satisfies ``matches`` (keyboard only)."""
        body = self.find("body")
        for _ in range(limit):
            body = self.driver.switch_to.active_element
            if matches(body):
                return body
            body.send_keys("\ue004")  # Tab
        raise AssertionError("Tab never reached the control")


@pytest.fixture(scope="module")
def browser_or_skip() -> Iterator[None]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    yield


__all__ = ["AXE", "Browser", "LiveServer", "WebDriverException", "skip_reason"]
