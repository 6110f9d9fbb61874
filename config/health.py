"""Liveness (`/healthz`, no dependencies) and readiness (`/readyz`, database and Redis)."""

from functools import wraps

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from config.exceptions import error_body


def _get_only(view):
    """Like require_GET, but a wrong method gets the error envelope, not an empty 405."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                error_body("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


@_get_only
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return None


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"], socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
    except redis.RedisError as exc:
        return str(exc) or exc.__class__.__name__
    return None


@_get_only
def readyz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    down = [name for name, error in checks.items() if error]
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: ("ok" if error is None else f"down: {error}") for name, error in checks.items()},
    }
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)
