"""drf-spectacular postprocessing: every operation documents the error envelope.

Any endpoint can answer malformed input (400), missing or bad credentials (401), a refusal
(403), another tenant's object (404), a conflict (409), a wrong media type (415) and a
throttle or lockout (429), always in `{"error": {"code", "message", "fields"?}}`. Views only
declare their success responses (and special errors); this hook adds the rest, once, so the
schema says what clients will really see (schemathesis checks it: tests/schema/).
"""

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
}
GLOBAL_ERRORS = ("400", "401", "403", "404", "409", "415", "429")
# Operations that can spend credits answer 402 when the balance is short.
CREDIT_PATH_PREFIXES = ("/api/jobs", "/api/stats")
UNSAFE = ("post", "put", "patch", "delete")


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
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result
