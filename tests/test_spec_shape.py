"""The spec is a product mobile teams generate clients from: these hold every route, including
the ones added later, to the conventions of backend/api/openapi.py (README, "Writing a route").
Each failure names the schema and property to fix in the code, never in the JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from tests.conftest import Api, World

SPEC = Path(__file__).resolve().parent.parent / "api_spec" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
SCHEMAS = "#/components/schemas/"
# A list that cannot grow past a small, fixed bound needs no pages: say why.
UNPAGED_LISTS = {
    "/me/devices": "a person's own devices (a handful)",
    "/care-teams": "the teams a person is on (a few)",
    "/patients/{patient_id}/care-team": "the members of a patient's teams who see them (tens)",
    "/checkin-templates": "the built-in instruments and an organization's own (tens)",
    "/patients/{patient_id}/flag-rules": "a patient's flag rules (capped per patient)",
    "/patients/{patient_id}/checkin-schedules/{schedule_id}/occurrences": "a bounded window",
    "/patients/{patient_id}/medications/{medication_id}/schedule": "a bounded window",
}

# Free-form or untyped today (issue 12): each is to become a typed schema. The list only
# shrinks: a new route may not add to it, and a typed one must be dropped from it.
NOT_YET_TYPED = frozenset(
    {
        # A FHIR Bundle's parts are FHIR's own types (validated with fhir.resources on import).
        "BundleIn.entry[]",
        "BundleIn.entry[]{}",
        "BundleIn.identifier",
        "BundleIn.identifier{}",
        "BundleIn.link[]",
        "BundleIn.link[]{}",
        "BundleIn.meta",
        "BundleIn.meta{}",
        "BundleIn.signature",
        "BundleIn.signature{}",
        "FhirBundle.entry[]",
        "FhirBundle.entry[]{}",
        "FhirBundle.link[]",
        "FhirBundle.link[]{}",
        "AppointmentHistoryEntry.from{}",
        "AppointmentHistoryEntry.to{}",
        "CarePlanRevision.changes{}",
        "CarePlanRevision.changes{}{}",
        "Error.errors",
        "Error.errors{}",
        "QuestionnaireResponse.author",
        "QuestionnaireResponse.author{}",
        "QuestionnaireResponse.item[]",
        "QuestionnaireResponse.item[]{}",
        "QuestionnaireResponse.source",
        "QuestionnaireResponse.source{}",
        "QuestionnaireResponse.subject",
        "QuestionnaireResponse.subject{}",
        "Reminder.subject",
        "Reminder.subject{}",
    }
)


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


def _untyped(spec: dict[str, Any]) -> set[str]:
    return {
        where
        for where, node in _all_subschemas(spec)
        if not ({"type", "$ref", "anyOf", "allOf", "oneOf", "const", "enum"} & set(node))
    }


def _free_form(spec: dict[str, Any]) -> set[str]:
    """A ``Dict()`` without a value type is a ``Map<String, Any>`` in every generated client."""
    return {
        where
        for where, node in _all_subschemas(spec)
        if node.get("type") == "object"
        and "properties" not in node
        and node.get("additionalProperties") in (None, True, {})
    }


def test_every_property_has_a_type_and_no_object_is_free_form(spec: dict[str, Any]) -> None:
    found = _untyped(spec) | _free_form(spec)
    assert sorted(found - NOT_YET_TYPED) == [], "give these a type: a field class or a Nested"
    assert sorted(NOT_YET_TYPED - found) == [], "typed now: drop them from NOT_YET_TYPED"


def test_every_fixed_value_set_is_one_named_enum(spec: dict[str, Any]) -> None:
    """A property never lists its values inline: it refers to an enum component, so a
    generated client has one type per value set (backend.api.common.Choice)."""
    schemas = spec["components"]["schemas"]
    inline = [
        where
        for name, schema in schemas.items()
        if not _is_enum(schema)
        for where, node in _subschemas(name, schema)
        if "enum" in node
    ]
    assert not inline, f"name these value sets with Choice(...): {inline}"
    enums = {name: tuple(s["enum"]) for name, s in schemas.items() if _is_enum(s)}
    same = [(a, b) for a in enums for b in enums if a < b and set(enums[a]) == set(enums[b])]
    assert not same, f"one value set, two names: {same}"


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
        if schema.get("description", "").startswith("Sent back as it was given"):
            continue  # an EchoSchema
        # A field sent only sometimes says when (metadata={"optional": True, "description"}).
        for prop in set(schema["properties"]) - required:
            assert schema["properties"][prop].get("description"), f"{name}.{prop}: say when"


def test_a_component_is_either_sent_or_received_where_the_two_differ(
    spec: dict[str, Any],
) -> None:
    """A schema used both ways has no field that only one way has (else: XInput)."""
    schemas = spec["components"]["schemas"]
    for name in _request_components(spec) & _response_components(spec):
        schema = schemas[name]
        assert set(schema.get("required", [])) <= set(schema.get("properties", {})), name


def test_every_list_that_can_grow_is_paginated_with_link_and_total_count(
    spec: dict[str, Any],
) -> None:
    for method, path, op in _operations(spec):
        ok = op["responses"].get("200", {})
        body = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if method != "GET" or body.get("type") != "array" or path in UNPAGED_LISTS:
            continue
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        assert {"page", "page_size"} <= names, f"GET {path} lists without pages"
        headers = ok.get("headers", {})
        assert headers.get("Link") == {"$ref": "#/components/headers/LINK"}, path
        assert headers.get("X-Total-Count") == {"$ref": "#/components/headers/TOTAL_COUNT"}, path


def test_a_page_links_to_its_neighbours_and_says_the_total(api: Api, world: World) -> None:
    team_a = world.teams["Riverside Primary Care A"].id
    first = api.get(f"/care-teams/{team_a}/patients?page_size=1", as_="priya")
    assert first.status_code == 200 and len(first.get_json()) == 1
    assert first.headers["X-Total-Count"] == "2"
    links = dict(
        (rel.split('"')[1], url.strip(" <>"))
        for url, rel in (part.split(";") for part in first.headers["Link"].split(","))
    )
    assert set(links) == {"first", "next", "last"}  # no "prev" on the first page
    second = api.get(links["next"], as_="priya")
    assert len(second.get_json()) == 1 and second.get_json() != first.get_json()
    assert 'rel="prev"' in second.headers["Link"] and 'rel="next"' not in second.headers["Link"]


def test_every_request_example_is_valid_for_its_body(spec: dict[str, Any]) -> None:
    """The reference page shows these: each must be a body the server takes."""
    examples = 0
    for method, path, op in _operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" not in body:
            continue
        examples += 1
        schema = {**body["schema"], "components": spec["components"]}
        errors = [e.message for e in OAS31Validator(schema).iter_errors(body["example"])]
        assert not errors, f"{method} {path}: {errors}"
    assert examples >= 8
