"""The committed spec is what the code generates, is valid OpenAPI 3, and documents what
clients rely on: bearer sign-in, the one error shape on every operation, pagination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

# The spec's shape checks (tests/test_spec_shape.py) run with this file too: the landing
# check runs this file, not the whole suite, so a route that breaks a convention is stopped
# before it lands rather than in CI.
from tests.test_spec_shape import (  # noqa: F401
    test_a_component_is_either_sent_or_received_where_the_two_differ,
    test_a_server_is_named,
    test_every_fixed_value_set_is_one_named_enum,
    test_every_list_that_can_grow_is_paginated_with_link_and_total_count,
    test_every_operation_has_a_unique_readable_operation_id,
    test_every_property_has_a_type_and_no_object_is_free_form,
    test_every_request_example_is_valid_for_its_body,
    test_null_is_a_type_and_a_nullable_reference_is_one_union,
    test_request_bodies_hold_no_read_only_fields_and_responses_no_write_only,
    test_what_a_response_sends_is_required,
)

SPEC = Path(__file__).resolve().parent.parent / "api_spec" / "openapi.json"
REGENERATE = (
    "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099 CARECOMPANION_INSTANCE_PATH=$(mktemp -d) "
    "carecompanion openapi write api_spec/openapi.json"
)
METHODS = ("get", "put", "post", "delete", "patch")
ERROR_FIELDS = {"code", "status", "message", "errors", "request_id"}


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    body: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return body


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parameters(spec: dict[str, Any], path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    shared = spec["paths"][path].get("parameters", [])
    return [_resolve(spec, p) for p in (*shared, *op.get("parameters", []))]


def test_the_committed_spec_is_what_the_code_generates(app: Flask, tmp_path: Path) -> None:
    written = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(args=["openapi", "write", str(written)])
    assert result.exit_code == 0, result.output
    assert written.read_text(encoding="utf-8") == SPEC.read_text(encoding="utf-8"), (
        f"api_spec/openapi.json is out of date; regenerate it with:\n  {REGENERATE}"
    )


def test_the_served_spec_is_the_committed_one(spec: dict[str, Any]) -> None:
    assert spec == json.loads(SPEC.read_text(encoding="utf-8")), (
        f"/openapi.json differs from api_spec/openapi.json; run:\n  {REGENERATE}"
    )


def test_the_spec_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_operation_but_health_and_the_calendar_feed_needs_a_bearer_token(
    spec: dict[str, Any],
) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearerAuth": []}]
    public = [(m, p) for m, p, op in _operations(spec) if op.get("security") == []]
    # The feed's URL is its own secret: a calendar app sends no token.
    assert sorted(public) == [
        ("GET", "/calendar/{secret}.ics"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/readyz"),
    ]
    for method, path, op in _operations(spec):
        if (method, path) not in public:
            assert "401" in op["responses"], f"{method} {path} does not document 401"


def test_the_error_schema_is_our_one_shape(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == ERROR_FIELDS
    assert set(error["required"]) == ERROR_FIELDS - {"errors"}
    assert error["additionalProperties"] is False


def test_every_operation_documents_its_errors_in_that_shape(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        label = f"{method} {path}"
        responses = op["responses"]
        assert "default" in responses, f"{label} documents no default error"
        for status, response in responses.items():
            if status.startswith(("2", "3")):
                continue
            content = _resolve(spec, response).get("content", {})
            assert content, f"{label} documents {status} without a body"
            for media_type, body in content.items():
                assert media_type == "application/json", f"{label} {status}: {media_type}"
                assert body["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    f"{label} documents {status} with another schema than Error"
                )
        if "requestBody" in op:
            assert {"400", "415", "422"} <= set(responses), f"{label}: bad bodies undocumented"
        ids = [p for p in _parameters(spec, path, op) if p["in"] == "path"]
        if any(p["schema"]["type"] == "integer" for p in ids):
            assert "404" in responses, f"{label} takes a record id but documents no 404"


def test_paginated_lists_document_the_x_pagination_header(spec: dict[str, Any]) -> None:
    paginated = []
    for method, path, op in _operations(spec):
        names = {p["name"] for p in _parameters(spec, path, op) if p["in"] == "query"}
        if not {"page", "page_size"} <= names:
            continue
        paginated.append(path)
        ok = _resolve(spec, op["responses"]["200"])
        assert ok["content"]["application/json"]["schema"]["type"] == "array"
        header = _resolve(spec, ok["headers"]["X-Pagination"])
        # The header carries JSON, so it is described by `content`, not a bare `schema`.
        assert header["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/PaginationMetadata"
        }, f"{method} {path}"
    assert "/patients" in paginated and "/patients/{patient_id}/access-log" in paginated


def test_every_operation_has_a_unique_stable_operation_id(spec: dict[str, Any]) -> None:
    ids = [
        op.get("operationId")
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "responses" in op
    ]
    assert len(ids) > 80 and None not in ids
    assert len(set(ids)) == len(ids)
    # Named for the view, not the path: a generated client keeps its method names.
    assert "getMedicationById" in ids and "postAlertAcknowledge" in ids
