"""Server-Timing of the REST tier's answers: the request's total and the time spent in each tier alone (rest,
proxy, backend, model), from the inclusive times the proxy passes back in its trailing metadata (docs/tracing.md).

A streamed answer's headers leave with its first event: they say the time to the first token; its last event
(`done`, or /v1's last chunk) carries the whole `timing`."""

from __future__ import annotations

import time
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from llm_wire.timing import HEADER, METADATA_KEY, exclusive_parts, format_timing, parse_timing, rounded

EVENT_STREAM = b"text/event-stream"
_current: ContextVar[RequestTiming | None] = ContextVar("lambdallm_rest_timing", default=None)


class RequestTiming:
    """One request's clock, and what the tiers behind it said of their times."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.inclusive: dict[str, float] = {}  # proxy, backend, model: each with the tiers behind it
        self.first_token_ms: float | None = None

    def elapsed_ms(self) -> float:
        """Milliseconds since the request came in."""
        return (time.perf_counter() - self.started) * 1000

    def record(self, metadata: Iterable[tuple[str, Any]] | None) -> None:
        """Take the proxy's `server-timing` trailing metadata, if it sent one."""
        for key, value in metadata or ():
            if key == METADATA_KEY and isinstance(value, str):
                self.inclusive = {k: v for k, v in parse_timing(value).items() if k in ("proxy", "backend", "model")}

    def first_token(self) -> None:
        """Note the arrival of a stream's first message."""
        if self.first_token_ms is None:
            self.first_token_ms = self.elapsed_ms()

    def summary(self) -> dict[str, float]:
        """The stream's last event's `timing`: total, time to first token and each tier's part, in ms (0.1)."""
        total = self.elapsed_ms()
        timing = rounded(total, exclusive_parts(total, self.inclusive))
        first = {} if self.first_token_ms is None else {"first_token": round(self.first_token_ms, 1)}
        return {"total": timing.pop("total")} | first | timing

    def header(self, streamed: bool) -> str:
        """The Server-Timing header: a stream's time to first token, or a whole answer's total and parts."""
        if streamed and self.first_token_ms is not None:
            return format_timing({"first_token": self.first_token_ms}, 1)
        total = self.elapsed_ms()
        return format_timing(rounded(total, exclusive_parts(total, self.inclusive)), 1)


def start() -> Token[RequestTiming | None]:
    """Start the current request's clock (tasks started from here share its RequestTiming)."""
    return _current.set(RequestTiming())


def stop(token: Token[RequestTiming | None]) -> None:
    """Forget the request's clock."""
    _current.reset(token)


def current() -> RequestTiming:
    """The current request's timing (a detached one outside a request: tests calling the domain directly)."""
    timing = _current.get()
    return timing if timing is not None else RequestTiming()


def add_header(message: MutableMapping[str, Any]) -> None:
    """Add Server-Timing to an `http.response.start` message of the current request."""
    timing = _current.get()
    if timing is None:
        return
    headers = message.setdefault("headers", [])
    streamed = any(k == b"content-type" and v.startswith(EVENT_STREAM) for k, v in headers)
    headers.append((HEADER.lower().encode(), timing.header(streamed).encode()))
