"""The spec is a product mobile teams generate clients from: these hold every route, including
the ones added later, to the conventions of backend/api/openapi.py (README, "Writing a route").
Each failure names the schema and property to fix in the code, never in the JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(__file__).resolve().parent.parent / "api_spec" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
SCHEMAS = "#/components/schemas/"
# A list that cannot grow past a small, fixed bound needs no pages: say why.
UNPAGED_LISTS = {
    "/me/devices": "a person's own devices (a handful)",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return loaded


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith(SCHEMAS):
            yield node["$ref"].removeprefix(SCHEMAS)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(spec: dict[str, Any], roots: Iterator[Any]) -> set[str]:
    seen: set[str] = set()
    todo = [name for root in roots for name in _refs(root)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_refs(spec["components"]["schemas"][name]))
    return seen


def _request_components(spec: dict[str, Any]) -> set[str]:
    return _reachable(
        spec, (op["requestBody"] for _, _, op in _operations(spec) if "requestBody" in op)
    )


def _response_components(spec: dict[str, Any]) -> set[str]:
    return _reachable(
        spec,
        (
            response
            for _, _, op in _operations(spec)
            for status, response in op["responses"].items()
            if status.startswith("2")
        ),
    )


def _is_enum(schema: dict[str, Any]) -> bool:
    return "enum" in schema and "properties" not in schema


def _subschemas(where: str, node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema inside a component: properties, items, additionalProperties, anyOf."""
    yield where, node
    for name, prop in node.get("properties", {}).items():
        yield from _subschemas(f"{where}.{name}", prop)
    if isinstance(node.get("items"), dict):
        yield from _subschemas(f"{where}[]", node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        yield from _subschemas(f"{where}{{}}", node["additionalProperties"])
    for i, option in enumerate(node.get("anyOf", [])):
        yield from _subschemas(f"{where}|{i}", option)


def _all_subschemas(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, schema in spec["components"]["schemas"].items():
        yield from _subschemas(name, schema)


def test_every_operation_has_a_unique_readable_operation_id(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in _operations(spec)]
    assert None not in ids
    assert len(set(ids)) == len(ids)
    for operation_id in ids:
        assert operation_id.isidentifier() and len(operation_id) <= 60, operation_id


def test_a_server_is_named(spec: dict[str, Any]) -> None:
    assert spec["servers"] and all("url" in s for s in spec["servers"])


def test_null_is_a_type_and_a_nullable_reference_is_one_union(spec: dict[str, Any]) -> None:
    for where, node in _all_subschemas(spec):
        assert "nullable" not in node, f"{where}: OpenAPI 3.1 says null with a type"
        if "anyOf" in node:
            options = node["anyOf"]
            assert len(options) == 2 and {"type": "null"} in options, (
                f"{where}: anyOf is only 'this reference or null'"
            )
        assert node.get("format") != "url", f"{where}: the format is 'uri'"


def test_request_bodies_hold_no_read_only_fields_and_responses_no_write_only(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    for name in _request_components(spec) | _response_components(spec):
        for prop, node in schemas[name].get("properties", {}).items():
            assert not node.get("readOnly") and not node.get("writeOnly"), (
                f"{name}.{prop}: one component per direction, not readOnly/writeOnly markers"
            )


def test_what_a_response_sends_is_required(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    # An echo of what a client sent (a partial proposal) is read as sent: skip those.
    for name in _response_components(spec) - _request_components(spec) - {"Error"}:
        schema = schemas[name]
        if _is_enum(schema) or not schema.get("properties"):
            continue
        required = set(schema.get("required", []))
        assert "id" not in schema["properties"] or "id" in required, f"{name}.id"
        missing = set(schema["properties"]) - required
        # Optional output fields are rare and explained (metadata={"optional": True}).
        assert len(missing) <= 3, f"{name}: {sorted(missing)} are not required"


def test_a_component_is_either_sent_or_received_where_the_two_differ(
    spec: dict[str, Any],
) -> None:
    """A schema used both ways has no field that only one way has (else: XInput)."""
    schemas = spec["components"]["schemas"]
    for name in _request_components(spec) & _response_components(spec):
        schema = schemas[name]
        assert set(schema.get("required", [])) <= set(schema.get("properties", {})), name
