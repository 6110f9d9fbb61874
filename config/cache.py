"""The cache backend: Django's Redis cache that fails open.

The cache holds nothing that is not disposable (throttle counters, cooldowns, cached reads). When
Redis is down a request must keep working on the database alone: every cache call
that cannot reach Redis behaves as a miss (`get` → default, writes are dropped, `add` → True)
and logs a warning, at most once every LOG_EVERY_SECONDS per process. Throttles therefore fail
open, and `/readyz` (which pings Redis itself) still reports the outage.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.commands.core import Script
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
_last_logged = 0.0


def _degraded(operation: str, exc: Exception) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= LOG_EVERY_SECONDS:
        _last_logged = now
        logger.warning("cache unavailable, %s treated as a miss (throttles fail open): %s", operation, exc)


class SharedClientRedisCacheClient(RedisCacheClient):
    """Django's client, but one `redis.Redis` per connection pool instead of a new one per call
    (building it was ~0.5 ms of each cache call; the pool, and so the sockets, were shared
    already). `redis.Redis` over a pool is thread-safe."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
        self._scripts = {}

    def run_script(self, source: str, keys: list, args: list, default):
        """Run a Lua script on the write server in one round trip (EVALSHA, loading it on first
        use); `default` when Redis cannot be reached (fails open like every other call)."""
        client = self._cache.get_client(write=True)
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(client, source)
        try:
            return script(keys=keys, args=args, client=client)
        except RedisError as exc:
            _degraded("script", exc)
            return default

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            _degraded("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            _degraded("get_many", exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            _degraded("has_key", exc)
            return False

    def set(self, key, value, timeout=None, version=None):
        try:
            return super().set(key, value, timeout, version)
        except RedisError as exc:
            _degraded("set", exc)
            return None

    def set_many(self, data, timeout=None, version=None):
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            _degraded("set_many", exc)
            return list(data)

    def add(self, key, value, timeout=None, version=None):
        # Advisory only: nothing in this project uses the cache as a lock.
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            _degraded("add", exc)
            return True

    def touch(self, key, timeout=None, version=None):
        try:
            return super().touch(key, timeout, version)
        except RedisError as exc:
            _degraded("touch", exc)
            return False

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            _degraded("incr", exc)
            return delta

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except RedisError as exc:
            _degraded("delete", exc)
            return False

    def delete_many(self, keys, version=None):
        try:
            return super().delete_many(keys, version)
        except RedisError as exc:
            _degraded("delete_many", exc)
            return None

    def clear(self):
        try:
            return super().clear()
        except RedisError as exc:
            _degraded("clear", exc)
            return None
