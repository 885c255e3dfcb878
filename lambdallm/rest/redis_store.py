"""The keys' counters in Redis, shared by every replica: one Lua script admits (all limits checked and counted in
one atomic step, so N are allowed in total, not N per replica) and one finishes; both read Redis's own clock, so
replicas whose clocks differ still share each window. When Redis is away, `Failover` applies `redis_failure`."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from lambdallm.metrics import RETRY_AFTER_S
from lambdallm.rest.keys import Limits
from lambdallm.rest.limit_store import WINDOW_S, LimitStore, LocalStore, Refusal, StoreAway
from lambdallm.rest.usage import UsageMetrics
from lambdallm.settings import RestSettings, SettingsError

log = logging.getLogger("lambdallm.rest")
PREFIX = "lambdallm:key:"
_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window_ms = tonumber(ARGV[1]) * 1000
local window = math.floor(now / window_ms)
"""
# KEYS: requests prefix, tokens prefix, streams. ARGV: window s, rpm, tpm, streams, lease, lease ms.
# Returns {0} (admitted) or {limit number, ms to the window's end}.
ADMIT = (
    _CLOCK
    + """
local retry = (window + 1) * window_ms - now
local rpm, tpm, streams = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tpm > 0 and tonumber(redis.call('GET', KEYS[2] .. window) or '0') >= tpm then return {2, retry} end
if streams > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= streams then return {3, 0} end
end
if rpm > 0 then
  local n = redis.call('INCR', KEYS[1] .. window)
  if n == 1 then redis.call('PEXPIRE', KEYS[1] .. window, 2 * window_ms) end
  if n > rpm then return {1, retry} end
end
if streams > 0 then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]))
end
return {0}
"""
)
# KEYS: tokens prefix, streams. ARGV: window s, tokens, lease.
FINISH = (
    _CLOCK
    + """
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[1] .. window, ARGV[2])
  redis.call('PEXPIRE', KEYS[1] .. window, 2 * window_ms)
end
redis.call('ZREM', KEYS[2], ARGV[3])
return 0
"""
)
# KEYS: the streams sets of the leases in ARGV[2..]. ARGV[1]: lease ms. Pushes each lease's expiry on (XX: a lease
# already given back is not taken again).
RENEW = (
    _CLOCK
    + """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return 0
"""
)
LIMITS = {1: "requests_per_minute", 2: "tokens_per_minute", 3: "concurrent_streams"}
# A stream's place in Redis expires this long after its replica last renewed it (every third of it): the places
# of a replica killed mid-stream come back within LEASE_S.
LEASE_S = 30.0


def _keys(key: str) -> tuple[str, str, str]:
    base = f"{PREFIX}{{{key}}}:"  # one hash slot per key
    return base + "requests:", base + "tokens:", base + "streams"


class RedisStore:
    """LimitStore over one Redis. A stream's place is a lease of `lease_s` that this replica renews while the
    stream lasts, so the places held by a replica that died come back within `lease_s`."""

    def __init__(self, client: redis.asyncio.Redis, lease_s: float = LEASE_S) -> None:
        self.client = client
        self.lease_s = lease_s
        self.lease_ms = int(lease_s * 1000)
        self._admit = client.register_script(ADMIT)
        self._finish = client.register_script(FINISH)
        self._renew = client.register_script(RENEW)
        self.held: dict[str, str] = {}  # lease -> its streams set, while this replica holds it
        self._renewer: asyncio.Task[None] | None = None

    async def admit(self, key: str, limits: Limits, lease: str) -> Refusal | None:
        """See LimitStore.admit."""
        rpm, tpm, streams = limits.requests_per_minute, limits.tokens_per_minute, limits.concurrent_streams
        args: list[str | int] = [WINDOW_S, rpm, tpm, streams, lease, self.lease_ms]
        answer = await self._admit(keys=list(_keys(key)), args=args)
        if not answer[0]:
            if streams:
                self.held[lease] = _keys(key)[2]
                if self._renewer is None or self._renewer.done():
                    self._renewer = asyncio.create_task(self._renew_leases())
            return None
        limit = LIMITS[int(answer[0])]
        retry_s = max(1, -(-int(answer[1]) // 1000)) if limit != "concurrent_streams" else RETRY_AFTER_S
        return Refusal(limit, getattr(limits, limit), retry_s)

    async def finish(self, key: str, limits: Limits, lease: str, tokens: int) -> None:
        """See LimitStore.finish."""
        _, tokens_key, streams = _keys(key)
        self.held.pop(lease, None)
        await self._finish(
            keys=[tokens_key, streams], args=[WINDOW_S, tokens if limits.tokens_per_minute else 0, lease]
        )

    async def _renew_leases(self) -> None:
        while self.held:
            await asyncio.sleep(self.lease_s / 3)
            held = dict(self.held)
            try:
                await self._renew(keys=list(held.values()), args=[self.lease_ms, *held])
            except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:  # the next admit says Redis is away
                log.debug("stream leases not renewed", extra={"error": type(exc).__name__})

    async def aclose(self) -> None:
        """Stop renewing leases and close the connections to Redis."""
        if self._renewer is not None:
            self._renewer.cancel()
        await self.client.aclose()


class Failover:
    """The Redis store while it answers; while it does not (and redis_retry_s after each failure), the settings'
    choice: "open" counts in this process alone, "closed" refuses (StoreAway). Each outage and recovery is logged
    once, and lambdallm_rest_limits_store_up / _errors_total say so in the metrics."""

    def __init__(self, shared: RedisStore, settings: RestSettings, metrics: UsageMetrics) -> None:
        self.shared = shared
        self.local = LocalStore()
        self.fail_open = settings.redis_failure == "open"
        self.retry_s = settings.redis_retry_s
        self.metrics = metrics
        self.away_until = 0.0
        self.leased_locally: set[str] = set()

    async def admit(self, key: str, limits: Limits, lease: str) -> Refusal | None:
        """See LimitStore.admit."""
        if time.monotonic() >= self.away_until:
            try:
                refusal = await self.shared.admit(key, limits, lease)
            except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
                self._away(exc)
            else:
                self._back()
                return refusal
        if not self.fail_open:
            raise StoreAway
        self.leased_locally.add(lease)
        return await self.local.admit(key, limits, lease)

    async def finish(self, key: str, limits: Limits, lease: str, tokens: int) -> None:
        """See LimitStore.finish; a lease taken here is given back here, one taken in Redis there (or it expires)."""
        if lease in self.leased_locally:
            self.leased_locally.discard(lease)
            await self.local.finish(key, limits, lease, tokens)
            return
        try:
            await self.shared.finish(key, limits, lease, tokens)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._away(exc)

    def _away(self, exc: BaseException) -> None:
        self.metrics.store_errors.inc()
        if self.away_until == 0.0:
            mode = "counting in this process alone" if self.fail_open else "refusing limited keys"
            log.error("limits store unreachable", extra={"error": type(exc).__name__, "mode": mode})
        self.metrics.store_up.set(0)
        self.away_until = time.monotonic() + self.retry_s

    def _back(self) -> None:
        if self.away_until:
            log.warning("limits store reachable again")
            self.away_until = 0.0
            self.metrics.store_up.set(1)

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self.shared.aclose()


def redis_store(settings: RestSettings, metrics: UsageMetrics) -> LimitStore:
    """The store of the Redis that `settings.redis_url` names, with its failover to this process's counters."""
    timeout = settings.redis_timeout_s
    try:
        # No retries inside the client: a store that is away must cost one timeout, then none for redis_retry_s.
        client = redis.asyncio.Redis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:
        raise SettingsError(f"redis_url: {exc}") from None
    return Failover(RedisStore(client), settings, metrics)
