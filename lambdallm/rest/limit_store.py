"""The counters behind each key's limits, in this process: the embedded default, right for one replica.

Requests and tokens are counted in fixed windows of WINDOW_S aligned on the clock (every minute starts at :00),
so a refusal's Retry-After is the time left in the window; tokens are counted when an answer reports them, and a
key whose window already holds its tokens_per_minute is refused until the next window. A stream is held from
admission to the end of the answer. With several replicas, use Redis (lambdallm/rest/redis_store.py): these
counters would let each replica allow a key its whole limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lambdallm.metrics import RETRY_AFTER_S
from lambdallm.rest.keys import Limits
from lambdallm.rest.usage import UsageMetrics
from lambdallm.settings import RestSettings

WINDOW_S = 60


@dataclass(frozen=True)
class Refusal:
    """Why a key's request is refused: the limit's name, its value, and when to try again."""

    limit: str
    value: int
    retry_after_s: int


class StoreAway(Exception):
    """The shared store cannot be reached and the settings say to refuse rather than count alone (closed)."""


class LimitStore(Protocol):
    """Where the counters live: `admit` counts a request in (or refuses it), `finish` counts its answer out."""

    async def admit(self, key: str, limits: Limits, lease: str) -> Refusal | None:
        """Count one request of `key`, holding a stream under `lease`, or say which limit refuses it."""
        ...

    async def finish(self, key: str, limits: Limits, lease: str, tokens: int) -> None:
        """Add the answer's `tokens` to the key's window and free the stream held under `lease`."""
        ...

    async def aclose(self) -> None:
        """Let go of what the store holds open (at shutdown)."""
        ...


def retry_after(now_s: float) -> int:
    """Whole seconds until the window holding `now_s` ends (at least 1)."""
    return max(1, math.ceil((math.floor(now_s / WINDOW_S) + 1) * WINDOW_S - now_s))


@dataclass
class _Window:
    index: int = -1
    requests: int = 0
    tokens: int = 0


class LocalStore:
    """The counters of this process (asyncio: admit and finish never wait, so no lock is needed)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.windows: dict[str, _Window] = {}
        self.streams: dict[str, int] = {}

    def _window(self, key: str, now: float) -> _Window:
        window = self.windows.setdefault(key, _Window())
        index = math.floor(now / WINDOW_S)
        if window.index != index:
            window.index, window.requests, window.tokens = index, 0, 0
        return window

    async def admit(self, key: str, limits: Limits, lease: str) -> Refusal | None:
        """See LimitStore.admit."""
        now = self.clock()
        window = self._window(key, now)
        if limits.tokens_per_minute and window.tokens >= limits.tokens_per_minute:
            return Refusal("tokens_per_minute", limits.tokens_per_minute, retry_after(now))
        if limits.concurrent_streams and self.streams.get(key, 0) >= limits.concurrent_streams:
            return Refusal("concurrent_streams", limits.concurrent_streams, RETRY_AFTER_S)
        if limits.requests_per_minute:
            if window.requests >= limits.requests_per_minute:
                return Refusal("requests_per_minute", limits.requests_per_minute, retry_after(now))
            window.requests += 1
        if limits.concurrent_streams:
            self.streams[key] = self.streams.get(key, 0) + 1
        return None

    async def finish(self, key: str, limits: Limits, lease: str, tokens: int) -> None:
        """See LimitStore.finish."""
        if limits.tokens_per_minute and tokens:
            self._window(key, self.clock()).tokens += tokens
        if limits.concurrent_streams:
            self.streams[key] = max(0, self.streams.get(key, 0) - 1)

    async def aclose(self) -> None:
        """Nothing to close."""


def store_for(settings: RestSettings, metrics: UsageMetrics) -> LimitStore:
    """The store `settings` name: Redis (with its failover) when redis_url is set, else this process's counters."""
    if not settings.redis_url:
        return LocalStore()
    # Imported only for Redis: redis-py imports OpenTelemetry whenever it is installed, and with tracing off no tier
    # may (tests/test_tracing.py).
    from lambdallm.rest.redis_store import redis_store

    return redis_store(settings, metrics)
