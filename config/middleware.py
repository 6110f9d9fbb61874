"""Request plumbing: path normalisation before URL resolution, and the request id."""

import re
import time
import uuid

from config.metrics import http_request_record


class StripTrailingSlashMiddleware:
    """Every API path answers with and without a trailing slash, without a redirect.

    Routes are declared without the slash; this strips it from the path before resolution.
    The admin and static files keep Django's own slash convention.
    """

    KEEP_PREFIXES = ("/admin", "/static/", "/media/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if len(path) > 1 and path.endswith("/") and not path.startswith(self.KEEP_PREFIXES):
            request.path_info = path.rstrip("/") or "/"
        return self.get_response(request)


class RequestIdMiddleware:
    """Give every request an id an operator can follow through the logs.

    An incoming `X-Request-ID` from the proxy is kept when it is a short token of letters,
    digits, `.`, `_` and `-` (anything else — too long, control characters — is replaced, so a
    client cannot forge log lines); otherwise a UUID is made. django-structlog, right after this
    middleware, binds it to every log line of the request and to the Celery tasks the request
    enqueues. The response echoes it.
    """

    HEADER = "HTTP_X_REQUEST_ID"
    VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get(self.HEADER, "")
        request_id = given if self.VALID.fullmatch(given) else str(uuid.uuid4())
        request.META[self.HEADER] = request_id
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """Count every request and time it, labelled by the route pattern that answered it (the
    pattern, e.g. `api/jobs/<uuid:job_id>`, never the path, so ids do not become series).

    First in MIDDLEWARE, so the time includes every other middleware. A path no route matches
    (the JSON 404 catch-all) is `unmatched`; a method outside HTTP's usual ones is `other`.
    """

    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    CATCH_ALL = "^"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.route if match is not None and match.route != self.CATCH_ALL else "unmatched"
        http_request_record(
            method=request.method if request.method in self.METHODS else "other",
            route=route or "/",
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
