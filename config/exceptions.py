"""One error shape for every endpoint.

`{"error": {"code": "...", "message": "...", "fields": {...}}}` — `fields` only for
validation errors. Services raise `ApplicationError`; this handler also turns DRF's
exceptions, Django's ValidationError, Http404, PermissionDenied and oversize requests into
the same envelope, so no client ever has to parse a second shape.
"""

import logging
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
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


# What a 503 for an unreachable database asks clients to wait before retrying, in seconds.
DATABASE_RETRY_AFTER_SECONDS = 5
# SQLSTATE classes that mean "the database is not there for us right now" rather than "this
# statement failed": connection exceptions (08), insufficient resources such as too many
# connections (53), and a server shutting down or starting up (57P01-57P03). A deadlock (40P01)
# or a statement timeout (57014) is about the request, not the database's availability.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException | None) -> bool:
    """True when `exc` says the database could not be reached or had no connection for us:
    a refused or failed connect (psycopg gives no SQLSTATE when no server answered, nor for a
    FATAL at connect such as "too many connections"), a connection lost mid-request, or a
    server-reported connection/resource/shutdown state."""
    if isinstance(exc, InterfaceError):  # "connection already closed"
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def _unavailable_body() -> dict:
    return error_body(
        "service_unavailable",
        "The service is temporarily unavailable; retry later.",
        retry_after=DATABASE_RETRY_AFTER_SECONDS,
    )


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
    if database_unavailable(exc):
        logger.warning(
            "database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        )
        return Response(
            _unavailable_body(), status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        )
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
    # Django calls handler500 inside the `except` of the exception it answers, without passing
    # it: a database that cannot be reached from a middleware or a plain Django view (the
    # admin's session lookup) is the same 503 as in the API.
    if database_unavailable(sys.exc_info()[1]):
        response = JsonResponse(_unavailable_body(), status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


def csrf_failure(request, reason=""):
    return JsonResponse(error_body("csrf_failed", "CSRF verification failed."), status=403)
