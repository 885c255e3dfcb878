"""The REST tier's edge: GET /metrics, at most `max_in_flight` requests at once (a 429 beyond), metrics of each.

It runs in front of Connexion's routing and validation, so a refusal or a scrape costs neither, and a request
refused here never waits: there is no queue in front of the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdallm.metrics import LATENCY_BUCKETS, RETRY_AFTER_S, TokenCounter, exposition
from lambdallm.rest.problems import send_problem

METRICS_PATH = "/metrics"
# Operations that must answer under any load: liveness, readiness and the scrape itself.
NEVER_REFUSED = frozenset({"/health", "/ready", METRICS_PATH})
# Label values stay bounded whatever a client sends: unknown methods and paths share one value each.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED = "unmatched"
_ROUTING = "connexion_routing"
_CLIENT_CLOSED_REQUEST = 499


class RestMetrics:
    """The REST tier's metrics, in a registry of their own (README, "Metrics")."""

    def __init__(self, max_in_flight: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lambdallm_rest_requests", "HTTP requests answered", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lambdallm_rest_request_duration_seconds",
            "Time to the end of the answer (of the whole stream for SSE)",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "lambdallm_rest_requests_in_flight", "Requests counted against max_in_flight now", registry=self.registry
        )
        limit = Gauge("lambdallm_rest_max_in_flight", "The max_in_flight setting", registry=self.registry)
        limit.set(max_in_flight)
        why = "Requests refused with 429 because max_in_flight were in flight"
        self.refused = Counter("lambdallm_rest_refused", why, registry=self.registry)
        self.tokens = TokenCounter("lambdallm_rest", self.registry)


def route_templates(spec: Path) -> dict[str, str]:
    """operationId -> path template of every operation in the OpenAPI document at `spec`."""
    paths = yaml.safe_load(spec.read_text())["paths"]
    return {
        operation["operationId"]: path
        for path, item in paths.items()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


class Edge:
    """ASGI middleware in front of Connexion: serves /metrics, limits requests in flight, measures each."""

    def __init__(self, app: ASGIApp, metrics: RestMetrics, max_in_flight: int, routes: Mapping[str, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.routes = dict(routes)
        self._paths = {path for path in routes.values() if "{" not in path} | {METRICS_PATH, "/openapi.json"}
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0
        path = scope["path"]
        limited = path not in NEVER_REFUSED

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if limited and self.in_flight >= self.max_in_flight:
            self.metrics.refused.inc()
            detail = f"{self.max_in_flight} requests are in flight, the most this server takes; retry later"
            await send_problem(send_status, 429, "Too Many Requests", detail, {"Retry-After": str(RETRY_AFTER_S)})
            self._record(scope, 429, started)
            return
        if limited:
            self.in_flight += 1
            self.metrics.in_flight.inc()
        scope.setdefault("extensions", {})  # shared with Connexion's copy of the scope: routing is seen here
        try:
            if path == METRICS_PATH:
                await self._scrape(scope, send_status)
            else:
                await self.app(scope, receive, send_status)
        except asyncio.CancelledError:
            status = status or _CLIENT_CLOSED_REQUEST
            raise
        finally:
            if limited:
                self.in_flight -= 1
                self.metrics.in_flight.dec()
            self._record(scope, status or 500, started)

    async def _scrape(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_problem(send, 405, "Method Not Allowed", f"{METRICS_PATH} answers GET", {"Allow": "GET, HEAD"})
            return
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), None)
        body, content_type = exposition(self.metrics.registry, accept)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _record(self, scope: Scope, status: int, started: float) -> None:
        route, method = self._route(scope), scope["method"] if scope["method"] in _METHODS else "other"
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The path template that Connexion routed the request to, else a fixed label: never the raw path."""
        routed = scope.get("extensions", {}).get(_ROUTING, {}).get("operation_id")
        if routed in self.routes:
            return self.routes[routed]
        path: str = scope["path"]
        if path in self._paths:
            return path
        return "/ui" if path == "/ui" or path.startswith("/ui/") else _UNMATCHED
