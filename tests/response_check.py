"""A pytest plugin that checks every JSON answer a test receives against the committed spec.

    pytest -p tests.response_check tests/test_worklist.py

Each 2xx JSON body the Flask test client returns is validated against the response schema
of its operation (required properties, types, enums, nullability): a field the spec says is
always sent but the view left out fails the test that met it. Opt-in, because it makes every
request slower; the generated-client journey and schemathesis check the same by default.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

SPEC = Path(__file__).resolve().parent.parent / "api_spec" / "openapi.json"


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return spec


def response_problems(rule: str, method: str, status: int, body: Any) -> list[str]:
    """What is wrong with ``body`` as the answer of ``method rule`` (a Flask rule)."""
    spec = _spec()
    path = rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
    operation = spec["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return []
    response = operation["responses"].get(str(status))
    if response is None:
        return [f"{method} {path}: status {status} is not documented"]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    wrapped = {**schema, "components": spec["components"]}
    validator = OAS31Validator(wrapped)
    return [
        f"{method} {path} {status}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(body)
    ]


_open = FlaskClient.open


def _checked_open(self: FlaskClient, *args: Any, **kwargs: Any) -> Any:
    response = _open(self, *args, **kwargs)
    request = getattr(response, "request", None)
    if request is None or not (200 <= response.status_code < 300) or not response.is_json:
        return response
    adapter = self.application.url_map.bind("localhost")
    try:
        rule, _ = adapter.match(request.path, method=request.method, return_rule=True)
    except Exception:
        return response
    body = response.get_json(silent=True)
    if body is None:  # an empty body (a 204, a HEAD) has nothing to check
        return response
    problems = response_problems(rule.rule, request.method, response.status_code, body)
    assert not problems, "\n".join(problems[:10])
    return response


@pytest.fixture(autouse=True)
def _check_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FlaskClient, "open", _checked_open)
