"""What the tiers' Prometheus metrics share: HTTP request metrics, token counts, the exposition of a registry.

Each running tier owns its own `CollectorRegistry` (never the process-wide default), so two tiers, or two
copies of one tier, in one process (the tests) keep their counts apart. Label values are bounded whatever a
client sends: route templates (never raw paths), known methods, status codes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

from lambdallm.http_protocol import answered_by_server

if TYPE_CHECKING:  # the proxy serves its metrics without starlette, which its install lacks
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds: from a plumbing hop (about a millisecond) to a generation at the edge of the 29 s budget.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# Refused at the edge: come back in a second (the in-flight requests of an LLM service end in seconds).
RETRY_AFTER_S = 1
UNMATCHED = "unmatched"
CLIENT_CLOSED_REQUEST = 499
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Children:
    """A labelled metric's children by their label values, each looked up once: prometheus_client's `labels()`
    takes a lock and checks the values on every call (about 3 us), a dict lookup a tenth of that. The label values
    must be bounded (route templates, methods, status codes), as any metric's must; children are never removed."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class TokenCounter:
    """`<prefix>_tokens_total{type="input"|"output"}`: the tokens the answers report."""

    def __init__(self, prefix: str, registry: CollectorRegistry) -> None:
        tokens = Counter(f"{prefix}_tokens", "Tokens reported by the answers", ["type"], registry=registry)
        self._input, self._output = tokens.labels("input"), tokens.labels("output")

    def count(self, input_tokens: int, output_tokens: int) -> None:
        """Add one answer's token counts."""
        self._input.inc(input_tokens)
        self._output.inc(output_tokens)


class HttpMetrics:
    """`<prefix>_requests_total{route,method,status}` and `<prefix>_request_duration_seconds{route,method}`."""

    def __init__(self, prefix: str, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{prefix}_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            f"{prefix}_request_duration_seconds",
            "Time to the end of the answer (of the whole body when it streams)",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._requests, self._latency = Children(self.requests), Children(self.latency)

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answer and its duration."""
        method = method if method in _METHODS else "other"
        self._requests(route, method, str(status)).inc()
        self._latency(route, method).observe(seconds)


class Measured:
    """ASGI middleware recording every HTTP request in `metrics`, labelled by `route_of(scope)` once answered
    (routers write what they matched into the scope, so the label is a template, not the path)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, seen = time.perf_counter(), StatusSeen(send)
        try:
            await self.app(scope, receive, seen)
        except asyncio.CancelledError:
            seen.status = seen.status or CLIENT_CLOSED_REQUEST
            raise
        finally:
            # An answer the server gave itself (a 408) is the one the client got, whatever the app sent after it.
            status = answered_by_server(scope) or seen.status or 500
            self.metrics.record(self.route_of(scope), scope["method"], status, time.perf_counter() - started)


class StatusSeen:
    """An ASGI `send` that passes every message on and keeps the status of the answer it started (0 before)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send, self.status = send, 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the text format the scraper's Accept asks for (OpenMetrics or Prometheus 0.0.4)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def header(scope: Scope, name: bytes) -> str | None:
    """One request header of an ASGI scope."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


async def send_exposition(registry: CollectorRegistry, scope: Scope, send: Send) -> None:
    """Answer a scrape (GET or HEAD) over ASGI."""
    body, content_type = exposition(registry, header(scope, b"accept"))
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
