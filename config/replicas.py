"""Read replicas: heavy reads go to a streaming replica, everything else to the primary.

`DATABASE_REPLICA_URLS` declares the replicas (aliases `replica`, `replica_2`, …; none: every
query goes to `default`, as before). Only code that asks for it reads from a replica: the
analytics APIs, the admin dashboard, the usage stats and exports run inside
`replica_reads(request)`, and there `ReplicaRouter.db_for_read` answers the first healthy
replica. Everywhere else, and for every write, the router answers `default`.

Reading your own writes. A replica is a little behind the primary, so a request that wrote, and
the same client for `REPLICA_PIN_SECONDS` after it, read from the primary:
- within the request: the router's `db_for_write` (every ORM write) and any unsafe method
  (POST, PUT, PATCH, DELETE: they may write by SQL too) pin the rest of the request to `default`;
- after it: `ReplicaPinMiddleware` sets a short-lived cookie on the response of a request that
  wrote, and a cache key for its authenticated user (API clients that keep no cookies); a request
  carrying the cookie, or of a user with the key, reads from the primary.

A lagging or dead replica is skipped. Before the first replica read of a request the replica is
checked (at most every `REPLICA_CHECK_SECONDS` per process): it must answer within
`REPLICA_CONNECT_TIMEOUT` and its replay lag (`now() - pg_last_xact_replay_timestamp()` while
WAL it received is not replayed yet; 0 when it has replayed all it received) must be at most
`REPLICA_MAX_LAG_SECONDS`. Otherwise the next replica is tried, then the primary answers; the
user sees no error either way. A replica that dies in the middle of a request's reads can still
fail that one request (the check is not repeated per query).
"""

import functools
import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

PIN_COOKIE = "primary_pin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Per request (contextvars: each thread and each async task has its own).
_pinned: ContextVar[bool] = ContextVar("replica_pinned", default=False)
_wrote: ContextVar[bool] = ContextVar("replica_wrote", default=False)
_reading: ContextVar[str | None] = ContextVar("replica_reading", default=None)

# Per process: alias -> (checked at, usable).
_health: dict[str, tuple[float, bool]] = {}

LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""


def replica_aliases() -> list[str]:
    return list(settings.DATABASE_REPLICAS)


def replica_lag(alias: str) -> float | None:
    """Seconds the replica `alias` is behind (0 = it has replayed all it received); None when it
    is not in recovery (a promoted replica is no longer a copy of the primary)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(LAG_SQL)
        lag = cursor.fetchone()[0]
    return None if lag is None else float(lag)


def replica_usable(alias: str, *, now: float | None = None) -> bool:
    now = time.monotonic() if now is None else now
    checked = _health.get(alias)
    if checked is not None and now - checked[0] < settings.REPLICA_CHECK_SECONDS:
        return checked[1]
    try:
        lag = replica_lag(alias)
        usable = lag is not None and lag <= settings.REPLICA_MAX_LAG_SECONDS
        if not usable:
            logger.warning(
                "replica %s skipped: lag %s s (max %s)", alias, lag, settings.REPLICA_MAX_LAG_SECONDS
            )
    except DatabaseError as exc:
        logger.warning("replica %s skipped: %s", alias, exc)
        connections[alias].close()
        usable = False
    _health[alias] = (now, usable)
    return usable


def _pin_key(user_id) -> str:
    return f"replica-pin:{user_id}"


def _recently_wrote(request) -> bool:
    if request is None:
        return False
    if request.COOKIES.get(PIN_COOKIE):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and cache.get(_pin_key(user.pk)))


@contextmanager
def replica_reads(request=None):
    """Send this block's reads to a healthy replica, unless the request (or its client, lately)
    wrote; on no usable replica they stay on the primary. Safe to nest."""
    alias = None
    if replica_aliases() and not _pinned.get() and not _recently_wrote(request):
        alias = next((a for a in replica_aliases() if replica_usable(a)), None)
    token = _reading.set(alias)
    try:
        yield alias
    finally:
        _reading.reset(token)


class ReplicaRouter:
    """DATABASE_ROUTERS entry: `default` for writes and ordinary reads, a replica inside
    `replica_reads` (see the module docstring)."""

    def db_for_read(self, model, **hints):
        alias = _reading.get()
        if alias is None or _pinned.get():
            return None
        return alias

    def db_for_write(self, model, **hints):
        _pinned.set(True)
        _wrote.set(True)
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data, wherever it was read

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db in settings.DATABASE_REPLICAS:
            return False  # a replica copies the primary's schema; nothing is migrated on it
        if db == "engine":
            return False  # the job engine's alias is the default database under other options
        return None


class ReplicaPinMiddleware:
    """Pins a request that writes, and its client for REPLICA_PIN_SECONDS after, to the primary."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        unsafe = request.method not in SAFE_METHODS
        pinned, wrote = _pinned.set(unsafe), _wrote.set(unsafe)
        try:
            response = self.get_response(request)
            if _wrote.get() and settings.DATABASE_REPLICAS:
                seconds = settings.REPLICA_PIN_SECONDS
                response.set_cookie(PIN_COOKIE, "1", max_age=seconds, httponly=True, samesite="Lax")
                user = getattr(request, "user", None)
                if user is not None and user.is_authenticated:
                    cache.set(_pin_key(user.pk), 1, timeout=seconds)
            return response
        finally:
            _pinned.reset(pinned)
            _wrote.reset(wrote)


def reads_from_replica(view_method):
    """Decorator for a view method (`def get(self, request, ...)`) whose reads may come from a
    replica: the body runs inside `replica_reads(request)`, after authentication, so a user's
    recent write (the cache key) is seen."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        with replica_reads(request):
            return view_method(self, request, *args, **kwargs)

    return wrapper
