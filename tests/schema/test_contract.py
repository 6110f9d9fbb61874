"""The schema tells the truth about every field: one walk over every operation of the OpenAPI
schema and the view and serializers drf-spectacular built it from (its public generator API,
DRF's public field flags), comparing per field

- required: a writable request field is in the body's `required` list exactly when the
  serializer requires it (`required=True`, which DRF sets only without a default); PATCH bodies
  are partial. Every field a response carries is required (output serializers always emit it);
- nullable: `allow_null` exactly when the schema says `nullable: true` (or offers the null enum);
- read-only: a read-only field is absent from request bodies and `readOnly` in responses; a
  write-only one is absent from responses.

The same walk checks that every operation documents a success response with a body schema
(204 excepted) and the error envelope for 400/401/403/404/409/429/503.
"""

import pytest
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.plumbing import build_mock_request, force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

ERROR_CODES = ("400", "401", "403", "404", "409", "429", "503")
ERROR_REF = "#/components/schemas/ErrorEnvelope"
VERBS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def walked():
    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    operations = []
    for path, path_regex, method, callback in EndpointEnumerator().get_api_endpoints():
        operation = schema["paths"].get(path, {}).get(method.lower())
        if operation is None:
            continue  # the trailing-slash twin of a documented path
        view = generator.create_view(callback, method)
        view.request = build_mock_request(method, path, view, None)
        view.schema.get_operation(path, path_regex, "^/api", method, generator.registry)
        operations.append(
            {
                "name": f"{method} {path}",
                "method": method,
                "operation": operation,
                "request": view.schema.get_request_serializer(),
                "responses": view.schema.get_response_serializers(),
                # A PATCH handler validates its body partially unless it says otherwise.
                "whole_body_patch": getattr(getattr(view, method.lower()), "whole_body_patch", False),
            }
        )
    return schema, operations


def _component(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _nullable(spec: dict) -> bool:
    return bool(
        spec.get("nullable")
        or any(
            option.get("$ref", "").endswith("/NullEnum") or option.get("type") == "null"
            for option in spec.get("oneOf", [])
        )
    )


def _serializer(candidate):
    candidate = force_instance(candidate)
    if isinstance(candidate, serializers.ListSerializer):
        candidate = candidate.child
    return candidate if isinstance(candidate, serializers.Serializer) else None


def _nested(field, spec, schema):
    """The serializer and component of a nested serializer field, if it is one."""
    child = _serializer(field)
    if child is None:
        return None
    node = spec.get("items", spec)
    node = next((option for option in node.get("allOf", []) if "$ref" in option), node)
    return child, _component(schema, node)


def _compare(serializer, component: dict, schema: dict, *, direction: str, partial: bool, where: str):
    problems = []
    properties = component.get("properties", {})
    required = set(component.get("required", []))
    fields = serializer.fields
    for name, field in fields.items():
        spec = properties.get(name)
        here = f"{where}: {direction} field {name!r}"
        if direction == "request":
            if field.read_only:
                if spec is not None and not spec.get("readOnly"):
                    problems.append(f"{here} is read-only but accepted by the schema")
                continue
            if spec is None:
                problems.append(f"{here} is writable but missing from the schema")
                continue
            expected = field.required and not partial
            if (name in required) != expected:
                problems.append(f"{here}: required on the server={expected}, in the schema={not expected}")
        else:
            if field.write_only:
                if spec is not None:
                    problems.append(f"{here} is write-only but in the response schema")
                continue
            if spec is None:
                problems.append(f"{here} is emitted but missing from the schema")
                continue
            if name not in required:
                problems.append(f"{here} is always present but not required in the schema")
            if field.read_only and not spec.get("readOnly"):
                problems.append(f"{here} is read-only but not readOnly in the schema")
        if field.allow_null != _nullable(spec):
            problems.append(f"{here}: allow_null={field.allow_null}, schema nullable={_nullable(spec)}")
        nested = _nested(field, spec, schema)
        if nested and nested[1].get("properties"):
            # Nested items are whole even in a PATCH: DRF validates them partially, so their
            # serializers re-check what they need (FormSerializer.validate_fields).
            problems += _compare(
                nested[0], nested[1], schema, direction=direction, partial=False, where=f"{where}.{name}"
            )
    for name in set(properties) - set(fields):
        problems.append(f"{where}: {direction} schema field {name!r} is not a field of the serializer")
    return problems


def _body_schema(schema: dict, content: dict) -> dict | None:
    media = content.get("application/json") or content.get("multipart/form-data")
    if not media or "schema" not in media:
        return None
    node = _component(schema, media["schema"])
    # A paginated list: compare its items.
    if set(node.get("properties", {})) == {"count", "next", "previous", "results"}:
        node = _component(schema, node["properties"]["results"]["items"])
    if node.get("type") == "array":
        node = _component(schema, node["items"])
    return node


def test_every_request_field_has_the_servers_required_nullable_and_read_only_flags(walked):
    schema, operations = walked
    problems = []
    for op in operations:
        serializer = _serializer(op["request"])
        body = op["operation"].get("requestBody")
        if serializer is None or body is None:
            continue
        component = _body_schema(schema, body["content"])
        if component is None:
            continue
        problems += _compare(
            serializer,
            component,
            schema,
            direction="request",
            partial=op["method"] == "PATCH" and not op["whole_body_patch"],
            where=op["name"],
        )
    assert not problems, "\n".join(problems)


def test_every_response_field_is_required_with_the_servers_nullable_and_read_only_flags(walked):
    schema, operations = walked
    problems = []
    for op in operations:
        declared = op["responses"]
        by_status = declared if isinstance(declared, dict) else {"200": declared}
        for status, candidate in by_status.items():
            if isinstance(candidate, OpenApiResponse):
                candidate = candidate.response
            serializer = _serializer(candidate)
            response = op["operation"]["responses"].get(str(status))
            if serializer is None or response is None or not str(status).startswith("2"):
                continue
            component = _body_schema(schema, response.get("content", {}))
            if component is None:
                problems.append(f"{op['name']} {status}: a serializer's output but no body schema")
                continue
            problems += _compare(
                serializer, component, schema, direction="response", partial=False, where=op["name"]
            )
    assert not problems, "\n".join(problems)


def test_every_operation_documents_its_success_body_and_its_error_envelopes(walked):
    schema, operations = walked
    problems = []
    for op in operations:
        responses = op["operation"]["responses"]
        successes = [status for status in responses if status.startswith("2")]
        if not successes:
            problems.append(f"{op['name']}: no success response")
        for status in successes:
            if status != "204" and not responses[status].get("content"):
                problems.append(f"{op['name']} {status}: no response body schema")
        for code in ERROR_CODES:
            content = responses.get(code, {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") != ERROR_REF:
                problems.append(f"{op['name']}: no {code} error envelope")
        if not op["operation"].get("summary"):
            problems.append(f"{op['name']}: no summary")
    documented = [method for item in schema["paths"].values() for method in item if method in VERBS]
    assert len(operations) == len(documented)
    assert not problems, "\n".join(problems)
