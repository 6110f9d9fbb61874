"""Liveness (`/healthz`, no dependencies) and readiness (`/readyz`, database and Redis).

`/readyz` is public (load balancers probe it), so it names what is down and nothing more: the
driver's message (host, port, role, database) goes to the log, not to the caller.
"""

import logging
from functools import wraps

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from config.exceptions import error_body

logger = logging.getLogger(__name__)


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


def _check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        logger.warning(
            "readyz: database down: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        )
        return False
    return True


def _check_redis() -> bool:
    try:
        client = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"], socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
    except redis.RedisError as exc:
        logger.warning("readyz: redis down: %s", str(exc) or type(exc).__name__)
        return False
    return True


@_get_only
def readyz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    down = [name for name, ok in checks.items() if not ok]
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: ("ok" if ok else "down") for name, ok in checks.items()},
    }
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)
