"""DRF's throttles with one Redis round trip each (rates: settings THROTTLE_*).

DRF's `SimpleRateThrottle` reads the caller's whole request history from the cache and writes
it back (a `get` and a `set`, two round trips, and two racing requests can both pass the last
slot). These keep DRF's sliding window — at most `num_requests` accepted in any `duration`
seconds, refused requests not counted — in a Redis sorted set updated by one Lua script: trim,
count, add if under the limit, in one atomic round trip (redis-py's `register_script` on the
cache's connection). With Redis down they fail open, like every cache call (config/cache.py).

Use these instead of `rest_framework.throttling`'s classes of the same names.
"""

import uuid

from django.core.cache import caches
from rest_framework import throttling

from config.cache import FailOpenScript

# KEYS[1] the window's set; ARGV: now (s), window (s), limit, a unique member.
# Returns {1, 0} when accepted, {0, oldest accepted timestamp} when refused.
SLIDING_WINDOW = FailOpenScript("""
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
    return {0, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return {1, '0'}
""")


class SlidingWindowThrottle(throttling.SimpleRateThrottle):
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        accepted, oldest = SLIDING_WINDOW(
            keys=[caches["default"].make_key(f"window:{self.key}")],
            args=[repr(self.now), self.duration, self.num_requests, uuid.uuid4().hex],
            default=(1, b"0"),
        )
        self.oldest = float(oldest)
        return bool(accepted)

    def wait(self):
        """Seconds until the oldest request in the window leaves it (the Retry-After header)."""
        return max(0.0, self.duration - (self.now - self.oldest))


class AnonRateThrottle(throttling.AnonRateThrottle, SlidingWindowThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle, SlidingWindowThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, SlidingWindowThrottle):
    pass
