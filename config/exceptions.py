"""One error shape for every endpoint.

`{"error": {"code": "...", "message": "...", "fields": {...}}}` — `fields` only for
validation errors. Services raise `ApplicationError`; this handler also turns DRF's
exceptions, Django's ValidationError, Http404, PermissionDenied and oversize requests into
the same envelope, so no client ever has to parse a second shape.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A business rule refused the request. Services raise it; the API turns it into JSON."""

    code = "application_error"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        fields: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields
        self.extra = extra or {}


class NotFound(ApplicationError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Conflict(ApplicationError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Forbidden(ApplicationError):
    code = "permission_denied"
    status_code = status.HTTP_403_FORBIDDEN


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _flatten_fields(detail) -> dict:
    """DRF error detail → {"field": ["message", ...]} with nested paths joined by dots."""
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in _messages(detail)]}
    fields: dict[str, list[str]] = {}
    for key, value in detail.items():
        if isinstance(value, dict):
            for sub, msgs in _flatten_fields(value).items():
                fields[f"{key}.{sub}"] = msgs
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                for sub, msgs in _flatten_fields(item).items():
                    fields[f"{key}.{index}.{sub}"] = msgs
        else:
            fields[str(key)] = [str(m) for m in _messages(value)]
    return fields


def _messages(value):
    if isinstance(value, list | tuple):
        for item in value:
            yield from _messages(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _messages(item)
    else:
        yield value


_DRF_CODES = {
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = error_body(exc.code, exc.message, exc.fields, **exc.extra)
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            fields = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        else:
            fields = {"non_field_errors": [str(m) for m in exc.messages]}
        return Response(error_body("validation_error", "Invalid input.", fields), status=400)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", "You do not have permission."), status=403)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return Response(error_body("request_too_large", "The request body is too large."), status=400)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", "The request was malformed."), status=400)
    if isinstance(exc, IntegrityError):
        # The last resort: a service should have mapped its own constraint races to a 409 or
        # 400 with a precise code; one that escaped is a conflict with stored data, not a crash.
        view = context.get("view")
        logger.error(
            "IntegrityError escaped %s: %s", type(view).__name__ if view else "a view", exc, exc_info=exc
        )
        _rollback_if_atomic()
        return Response(error_body("conflict", "The request conflicts with stored data."), status=409)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("validation_error", "Invalid input.", _flatten_fields(exc.detail))
        return response
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message = str(detail) if not isinstance(detail, dict | list) else "Request failed."
    if isinstance(detail, dict) and "detail" in detail:
        message = str(detail["detail"])
    extra = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
    response.data = error_body(code, message, **extra)
    return response


def _rollback_if_atomic() -> None:
    """Under ATOMIC_REQUESTS the request's transaction is broken after an IntegrityError; mark
    it for rollback so the 409 is answered instead of a 'current transaction is aborted' 500."""
    if connection.in_atomic_block:
        transaction.set_rollback(True)


def json_404(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_400(request, exception=None):
    return JsonResponse(error_body("bad_request", "The request was malformed."), status=400)


def json_403(request, exception=None):
    return JsonResponse(error_body("permission_denied", "You do not have permission."), status=403)


def json_500(request):
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


def csrf_failure(request, reason=""):
    return JsonResponse(error_body("csrf_failed", "CSRF verification failed."), status=403)
