"""The API reference at /docs: served by the app itself, no other host, under a strict CSP."""

from __future__ import annotations

import re

from flask import Flask


def test_the_reference_page_and_everything_it_loads_come_from_this_server(ctx: Flask) -> None:
    client = ctx.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "http" not in html  # no inline script, no other host
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/docs/assets/swagger-ui-bundle.js" in loaded and "/docs/init.js" in loaded
    for url in loaded:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.data) > 100, url
    init = client.get("/docs/init.js").get_data(as_text=True)
    assert 'url: "/openapi.json"' in init
    assert client.get("/openapi.json").status_code == 200  # what the page reads, signed out


def test_only_swagger_ui_files_are_served_from_its_folder(ctx: Flask) -> None:
    client = ctx.test_client()
    assert client.get("/docs/assets/LICENSE").status_code == 404
    assert client.get("/docs/assets/..%2F..%2Fflask_swagger_ui.py").status_code == 404
    assert client.get("/docs/assets/oauth2-redirect.html").status_code == 404
