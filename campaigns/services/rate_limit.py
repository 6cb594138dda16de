"""Per-channel send rate limits: a token bucket in Redis, shared by every worker."""

from __future__ import annotations

import math
import threading
import time

import redis
from django.conf import settings

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local granted = math.min(want, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {granted, tostring(tokens)}
"""

_client: redis.Redis | None = None
_script = None
_lock = threading.Lock()


def _redis() -> redis.Redis:
    global _client, _script
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL)
            _script = _client.register_script(_TAKE)
    return _client


def send_tokens_take(*, channel: str, wanted: int, now: float | None = None) -> tuple[int, float]:
    """Take up to ``wanted`` send tokens for ``channel``.

    Returns (granted, seconds until the rest could be granted). Channels without a limit
    grant everything.
    """
    limit = settings.DISPATCH_RATE_LIMITS.get(channel)
    if limit is None or wanted <= 0:
        return wanted, 0.0
    rate, burst = limit
    _redis()
    key = f"{settings.DISPATCH_RATE_LIMIT_PREFIX}:{channel}"
    granted, left = _script(
        keys=[key], args=[rate, burst, time.time() if now is None else now, wanted]
    )
    granted = int(granted)
    missing = wanted - granted
    wait = 0.0 if missing <= 0 else max(missing - float(left), 0.0) / rate
    return granted, math.ceil(wait * 1000) / 1000
