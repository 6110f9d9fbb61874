"""The cache fails open: with Redis down, requests keep working on the database alone.

The cache holds nothing that is not disposable (throttle windows, cooldowns). The backend is
django-redis with its documented `IGNORE_EXCEPTIONS` option (settings CACHES): a cache call that
cannot reach Redis behaves as a miss (`get` → default, `get_many` → {}, writes and `add` → None)
and django-redis logs it (`DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS`) to this module's logger, which
`OncePerInterval` keeps to one record every LOG_EVERY_SECONDS per process. Raw Redis work (the
throttles' Lua script) goes through `run_script`, which fails open the same way. Throttles
therefore let requests through, and `/readyz` (which pings Redis itself) reports the outage.
"""

import logging
import threading
import time

from django_redis import get_redis_connection
from redis.commands.core import Script
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0


class OncePerInterval(logging.Filter):
    """Lets one record through every `seconds` (an outage would otherwise log once per call)."""

    def __init__(self, seconds: float = LOG_EVERY_SECONDS):
        super().__init__()
        self.seconds = seconds
        self.last = float("-inf")
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.seconds:
                return False
            self.last = now
        return True


class FailOpenScript:
    """A Lua script run on the cache's Redis in one round trip (EVALSHA, loaded on first use),
    through redis-py's `register_script`. `default` is returned when Redis cannot be reached."""

    def __init__(self, source: str):
        self.source = source
        self.script: Script | None = None

    def __call__(self, *, keys: list, args: list, default):
        try:
            client = get_redis_connection("default")
            if self.script is None:
                self.script = client.register_script(self.source)
            return self.script(keys=keys, args=args, client=client)
        except RedisError as exc:
            logger.warning("cache unavailable, script treated as a miss (throttles fail open): %s", exc)
            return default
