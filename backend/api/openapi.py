"""How the code becomes ``api_spec/openapi.json``: the conventions a generated client relies on,
applied once here so that every route, old or new, is held to them.

- **Input and output are separate schemas.** A marshmallow schema is written once; where its
  request-body view differs from its response view (it has ``dump_only`` or ``load_only``
  fields, or nests a schema that has), it becomes two components: ``Name`` as the server sends
  it (no write-only fields) and ``NameInput`` (``NameUpdate`` for a ``partial`` schema) as a
  client sends it (no read-only fields). A client never sends a field the server would refuse.
- **What the server sends is required.** In a response component every property is
  ``required`` -- it is always sent, ``null`` when it has no value -- unless its field says
  ``metadata={"optional": True}`` (only sent sometimes; say when in the description), or the
  schema is an :class:`backend.api.common.EchoSchema` (sent back as the client gave it).
- **OpenAPI 3.1, so null is a type:** a nullable field is ``"type": ["string", "null"]``, a
  nullable reference ``"anyOf": [{"$ref": ...}, {"type": "null"}]``, which both
  openapi-python-client and openapi-typescript read as one type, ``X | None`` / ``X | null``.
- **A fixed value set is one named enum component**, declared with
  :func:`backend.api.common.Choice` (``validate=Choice("WorkItemKind", KINDS)``) and
  referenced wherever it appears; the same name with other values is an error.
- **Every operation has an operationId** from its view: the method and the MethodView's name
  (``getMedicationById``), stable when a path moves.
- **Errors:** 401 wherever sign-in is needed, 400 and 415 wherever a JSON body is read, 414
  wherever the URL holds a parameter (the app refuses a URL of over 4,096 characters).
- **Pagination:** a paginated list documents ``Link`` (RFC 8288) and ``X-Total-Count``.

tests/test_spec_shape.py checks each of these over the whole document.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import marshmallow as ma
from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter, SchemaResolver
from apispec.ext.marshmallow.common import (
    get_fields,
    get_unique_schema_name,
    make_schema_key,
    resolve_schema_instance,
)

from backend.api.common import Choice, EchoSchema, Union

IN, OUT = "in", "out"
_direction: ContextVar[str] = ContextVar("spec_direction", default=OUT)
_SCHEMAS = "#/components/schemas/"
ECHO = "Sent back as it was given: a field that is not required is there if it was given."


@contextmanager
def _reading(direction: str) -> Iterator[None]:
    token = _direction.set(direction)
    try:
        yield
    finally:
        _direction.reset(token)


def _nested_schemas(field: ma.fields.Field) -> Iterator[ma.Schema]:
    if isinstance(field, ma.fields.Nested) and not isinstance(field, ma.fields.Pluck):
        yield resolve_schema_instance(field.schema)
    elif isinstance(field, ma.fields.List):
        yield from _nested_schemas(field.inner)
    elif isinstance(field, ma.fields.Dict) and field.value_field is not None:
        yield from _nested_schemas(field.value_field)


def _two_faced(schema: ma.Schema, seen: frozenset[type] = frozenset()) -> bool:
    """Whether the schema reads differently in a request body than in a response."""
    if type(schema) in seen:
        return False
    for field in schema.fields.values():
        if field.dump_only or field.load_only:
            return True
        if any(_two_faced(s, seen | {type(schema)}) for s in _nested_schemas(field)):
            return True
    return False


def schema_name(schema: type[ma.Schema] | ma.Schema) -> str:
    """The component name: the class name without "Schema"; a request body's view of a
    schema that differs by direction is "...Input" ("...Update" when partial)."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    partial = not isinstance(schema, type) and bool(schema.partial)
    if partial and _direction.get() == IN and not name.endswith("Update"):
        return name + "Update"
    if _direction.get() == IN and _two_faced(resolve_schema_instance(schema)):
        return name if name.endswith(("Input", "Update")) else name + "Input"
    return name


class CareConverter(OpenAPIConverter):
    """Marshmallow to OpenAPI with the conventions in this module's docstring."""

    def init_attribute_functions(self) -> None:
        super().init_attribute_functions()
        # After type, choices and metadata, before nullable: a named enum becomes a $ref.
        at = self.attribute_functions.index(self.field2nullable)
        self.attribute_functions.insert(at, self.named_enum)
        self.attribute_functions.insert(at, self.constant)
        self.attribute_functions.insert(at, self.union)

    def key(self, schema: ma.Schema) -> tuple[Any, ...]:
        base = make_schema_key(schema)
        if _direction.get() == IN and (schema.partial or _two_faced(schema)):
            return (*base, IN)
        return base

    def resolve_nested_schema(self, schema: Any) -> Any:
        try:
            instance = resolve_schema_instance(schema)
        except ma.exceptions.RegistryError:
            return schema
        if instance.partial and _direction.get() == OUT:
            # Partial is a request's shape (some fields); echoed back, it is read as sent.
            with _reading(IN):
                return self.resolve_nested_schema(schema)
        key = self.key(instance)
        if key not in self.refs:
            name = get_unique_schema_name(self.spec.components, self.schema_name_resolver(schema))
            self.spec.components.schema(name, schema=schema)
        return self.get_ref_dict(instance)

    def get_ref_dict(self, schema: ma.Schema) -> dict[str, Any]:
        ref: dict[str, Any] = self.spec.components.get_ref("schema", self.refs[self.key(schema)])
        if getattr(schema, "many", False):
            return {"type": "array", "items": ref}
        return ref

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        instance = resolve_schema_instance(schema)
        reading = _direction.get() == IN
        fields = {
            name: field
            for name, field in get_fields(instance).items()
            if not (field.dump_only if reading else field.load_only)
        }
        jsonschema: dict[str, Any] = self.fields2jsonschema(
            fields, partial=instance.partial if reading else None
        )
        if not reading:
            echo = isinstance(instance, EchoSchema)
            jsonschema["required"] = sorted(
                field.data_key or name
                for name, field in fields.items()
                if not field.metadata.get("optional")
                and (
                    not echo
                    or field.required
                    or field.load_default is not ma.missing
                    or field.metadata.get("sent")
                )
            )
        if not reading and isinstance(instance, EchoSchema):
            jsonschema["description"] = ECHO
        if not jsonschema.get("required"):
            jsonschema.pop("required", None)
        for prop in jsonschema["properties"].values():
            # Said by the direction of the component itself.
            prop.pop("readOnly", None)
            prop.pop("writeOnly", None)
        if instance.unknown != ma.EXCLUDE:
            jsonschema["additionalProperties"] = instance.unknown == ma.INCLUDE
        return jsonschema

    def union(self, field: ma.fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A :class:`backend.api.common.Union`: ``oneOf`` its options."""
        if not isinstance(field, Union):
            return {}
        return {"oneOf": [self.field2property(option) for option in field.options]}

    def constant(self, field: ma.fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A ``Constant`` field: its one value, typed (``"const"``)."""
        if not isinstance(field, ma.fields.Constant):
            return {}
        value = field.constant
        kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
        return {"type": kinds.get(type(value), "string"), "const": value}

    def named_enum(self, field: ma.fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
        names = {v.name for v in field.validators if isinstance(v, Choice)}
        if not names:
            return {}
        (name,) = names
        values = [v for v in ret.pop("enum", []) if v is not None]
        component = {"type": ret.pop("type", "string"), "enum": values}
        known = self.spec.components.schemas.get(name)
        if known is None:
            self.spec.components.schema(name, component)
        elif known != component:
            raise ValueError(f"enum {name} declared twice with different values")
        ret["$ref"] = _SCHEMAS + name
        return {}

    def field2nullable(self, field: ma.fields.Field, ret: dict[str, Any]) -> dict[str, Any]:
        if not field.allow_none:
            return {}
        if "$ref" in ret or "allOf" in ret:
            refs = [{"$ref": ret.pop("$ref")}] if "$ref" in ret else ret.pop("allOf")
            return {"anyOf": [*refs, {"type": "null"}]}
        if "type" in ret:
            types = ret["type"] if isinstance(ret["type"], list) else [ret["type"]]
            return {"type": [*types, "null"]}
        return {}


class CareResolver(SchemaResolver):
    """Resolves a request body's schemas in the input direction, the rest as output."""

    def resolve_operations(self, operations: Any, **kwargs: Any) -> None:
        bodies = {}
        for method, operation in (operations or {}).items():
            if isinstance(operation, dict) and "requestBody" in operation:
                bodies[method] = operation.pop("requestBody")
        super().resolve_operations(operations, **kwargs)
        with _reading(IN):
            for method, body in bodies.items():
                self.resolve_schema(body)
                operations[method]["requestBody"] = body


class CarePlugin(MarshmallowPlugin):
    Converter = CareConverter
    Resolver = CareResolver

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        assert self.converter is not None
        self.converter.map_to_openapi_type(ma.fields.Url, "string", "uri")

    def schema_helper(  # type: ignore[override]  # apispec's two bases disagree
        self, name: str, _: Any, schema: Any = None, **kwargs: Any
    ) -> Any:
        if schema is None:
            return None
        assert isinstance(self.converter, CareConverter)
        instance = resolve_schema_instance(schema)
        self.converter.refs[self.converter.key(instance)] = name
        return self.converter.schema2jsonschema(instance)


class SortedSpec(APISpec):
    """Keys in sorted order: the committed api_spec/openapi.json changes only where the API
    does, never because a decorator or a blueprint moved."""

    def to_dict(self) -> dict[str, Any]:
        ordered: dict[str, Any] = _sorted(super().to_dict())
        return ordered


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class OperationsPlugin(BasePlugin):
    """Gives every operation its operationId; documents the errors any operation can answer
    with, whatever its view does (401 wherever sign-in is needed, 400 and 415 wherever a JSON
    body is read, 414 wherever the URL holds a parameter), and the pagination headers of a
    paginated list."""

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        rule: Any = None,
        **_: Any,
    ) -> None:
        # A stable operationId from the view, not the path: the method and the MethodView's
        # name ("getMedicationById"), so generated clients keep their names when a path moves.
        view = rule.endpoint.rsplit(".", 1)[-1] if rule is not None else None
        for method, operation in (operations or {}).items():
            if view is not None:
                operation.setdefault("operationId", f"{method}{view}")
            responses = operation.setdefault("responses", {})
            if operation.get("security") != []:
                responses.setdefault(401, "UNAUTHORIZED")
            if "requestBody" in operation:
                responses.setdefault(400, "BAD_REQUEST")
                responses.setdefault(415, "UNSUPPORTED_MEDIA_TYPE")
            if any(p.get("in") in ("path", "query") for p in _parameters(operation, rule)):
                # The app refuses a URL over backend.app.MAX_REQUEST_LINE characters itself.
                responses.setdefault(414, "REQUEST_URI_TOO_LONG")
            for response in responses.values():
                headers = response.get("headers", {}) if isinstance(response, dict) else {}
                if "X-Pagination" in headers:
                    headers["Link"] = "LINK"
                    headers["X-Total-Count"] = "TOTAL_COUNT"


def _parameters(operation: dict[str, Any], rule: Any) -> list[dict[str, Any]]:
    """The operation's parameters, and the path's (a rule with converters has some)."""
    params = [p for p in operation.get("parameters", []) if isinstance(p, dict)]
    if rule is not None and rule.arguments:
        params.append({"in": "path"})
    return params


def spec_plugins() -> dict[str, Any]:
    """The ``spec_kwargs`` for :class:`backend.api.errors.CareApi`."""
    return {
        "marshmallow_plugin": CarePlugin(schema_name_resolver=schema_name),
        "extra_plugins": [OperationsPlugin()],
    }
