"""drf-spectacular wiring: every operation has a summary and documents the error envelope.

Any endpoint can answer malformed input (400), missing or bad credentials (401), a refusal
(403), another tenant's object (404), a conflict (409), a wrong media type (415) and a
throttle or lockout (429), always in `{"error": {"code", "message", "fields"?}}`. Views only
declare their success responses (and special errors); this hook adds the rest, once, so the
schema says what clients will really see (schemathesis checks it: tests/schema/).
"""

import inspect
import re

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

ERROR_COMPONENT = "ErrorEnvelope"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, e.g. `validation_error`."},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Validation errors per field (dotted paths for nested ones).",
                },
            },
            "additionalProperties": True,
        }
    },
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input",
    "401": "Not authenticated",
    "402": "Not enough credits",
    "403": "Forbidden",
    "404": "Not found (or another tenant's object)",
    "409": "Conflict with the current state",
    "415": "Unsupported media type",
    "429": "Throttled or locked out",
    "503": "A dependency (the database) is unavailable; retry later (`service_unavailable`)",
}
GLOBAL_ERRORS = ("400", "401", "403", "404", "409", "415", "429", "503")
# Operations that can spend credits answer 402 when the balance is short.
CREDIT_PATH_PREFIXES = ("/api/jobs", "/api/stats")
UNSAFE = ("post", "put", "patch", "delete")


def require_response_fields(result, generator, request, public):
    """Every field a response carries is listed as required.

    Output serializers here are ModelSerializers or declared Serializers over real objects, which
    always emit every readable field (null when empty), but drf-spectacular lists only read-only
    and `required=True` fields, so a writable field with a default (an item's `description`) looked
    optional in responses and generated clients typed it `Unset`. Request components (the
    `…Request` ones of COMPONENT_SPLIT_REQUEST) keep the server's own required flags.
    tests/schema/test_contract.py checks this against the serializers; schemathesis checks real
    responses against it."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        properties = component.get("properties")
        if name.endswith("Request") or not properties:
            continue
        readable = [field for field, spec in properties.items() if not spec.get("writeOnly")]
        if readable:
            component["required"] = readable
    return result


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = list(GLOBAL_ERRORS)
            if method in UNSAFE and path.startswith(CREDIT_PATH_PREFIXES):
                codes.append("402")
            responses = operation["responses"]
            for code in codes:
                responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
            # An error a view declares with its own description only is still the envelope.
            for code, response in responses.items():
                if code[:1] in ("4", "5") and not response.get("content"):
                    response["content"] = {"application/json": {"schema": ref}}
    return result


IDEMPOTENCY_KEY_HELP = (
    "Makes a retry safe: the same key with the same body within 24 hours answers the first response "
    "(header `Idempotent-Replayed: true`) and creates nothing; with another body, 409 "
    "`idempotency_key_reused`."
)

VERBS = {"get": "Read", "post": "Create", "put": "Replace", "patch": "Update", "delete": "Delete"}


def _first_sentence(text: str | None) -> str:
    line = inspect.cleandoc(text or "").split("\n\n")[0].replace("\n", " ").strip()
    line = re.sub(r"^(GET|POST|PUT|PATCH|DELETE): ", "", line)
    sentence = line.split(". ")[0].rstrip(".")
    if len(sentence) > 100:
        sentence = sentence[:100].rsplit(" ", 1)[0] + "…"
    return sentence


WEBHOOK_ACK_SCHEMA = {
    "type": "object",
    "required": ["status", "event_id"],
    "properties": {
        "status": {"type": "string", "description": "`processed`, `duplicate` or `ignored`."},
        "event_id": {"type": "string"},
    },
    "additionalProperties": True,
}


def webhook_ack(description: str):
    """The 200 of a webhook receiver: what happened to the event, plus what it touched."""
    return OpenApiResponse(response=WEBHOOK_ACK_SCHEMA, description=description)


def whole_body_patch(handler):
    """Marks a `patch` handler whose body is validated whole (every required field must be sent),
    so its schema shows the serializer's required fields; drf-spectacular otherwise documents
    every PATCH body as partial."""
    handler.whole_body_patch = True
    return handler


class AutoSchema(SpectacularAutoSchema):
    """Every operation gets a summary: the one given to @extend_schema, else the first sentence
    of the handler's docstring, else of the view's docstring when the view answers one method,
    else one made from the method and the path (`POST /api/jobs/{job_id}/cancel` → "Cancel
    jobs"). The docstrings stay whole in the descriptions."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if getattr(getattr(self.view, self.method.lower(), None), "idempotent", False):
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description=IDEMPOTENCY_KEY_HELP,
                )
            )
        return parameters

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        handler = getattr(self.view, method.lower(), None)
        body = (operation or {}).get("requestBody")
        if method == "PATCH" and body and getattr(handler, "whole_body_patch", False):
            component = self.resolve_serializer(self.get_request_serializer(), "request")
            for media in body["content"].values():
                media["schema"] = component.ref
            body["required"] = True
        return operation

    def get_summary(self):
        summary = super().get_summary()
        if summary:
            return summary
        method = self.method.lower()
        summary = _first_sentence(getattr(getattr(self.view, method, None), "__doc__", None))
        methods = [m for m in self.view.allowed_methods if m not in ("OPTIONS", "HEAD")]
        if not summary and len(methods) == 1:
            summary = _first_sentence(type(self.view).__doc__)
        summary = summary or self._summary_from_path(method)
        return summary[:1].upper() + summary[1:]

    def _summary_from_path(self, method: str) -> str:
        parts = [part for part in self.path.strip("/").split("/")[1:] if part]
        words = [part.replace("-", " ").replace("_", " ") for part in parts if not part.startswith("{")]
        ends_with_id = bool(parts) and parts[-1].startswith("{")
        action_path = len(parts) >= 2 and not ends_with_id and parts[-2].startswith("{")
        if method == "post" and action_path and "GET" not in self.view.allowed_methods:
            return f"{words[-1].capitalize()} ({' '.join(words[:-1])})"
        if method == "get" and not ends_with_id and hasattr(self.view, "list"):
            return f"List {' '.join(words)}"
        verb = VERBS.get(method, method.title())
        return f"{verb} {'one of ' if ends_with_id and method == 'get' else ''}{' '.join(words)}"


SIGNATURE_FORMAT = (
    '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the provider\'s webhook '
    "secret>`; the body must be sent byte for byte as signed, and t must be within five minutes."
)


def signature_header(*, required: bool, providers: str = "") -> OpenApiParameter:
    """The `X-Signature` header of a signed webhook, for @extend_schema(parameters=...)."""
    where = f" Used by {providers}." if providers else ""
    return OpenApiParameter(
        "X-Signature",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=required,
        description=SIGNATURE_FORMAT + where,
    )


def provider_signature_headers() -> list[OpenApiParameter]:
    """The payment providers that sign with their own schemes (their SDKs verify them)."""
    return [
        OpenApiParameter(
            "Stripe-Signature",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="Stripe's own signature (provider `stripe`), checked with its webhook secret.",
        ),
        OpenApiParameter(
            "X-Razorpay-Signature",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="Razorpay's HMAC of the raw body (provider `razorpay`).",
        ),
    ]
