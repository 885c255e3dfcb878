"""The REST tier's edge: GET /metrics, at most `max_in_flight` requests at once (a 429 beyond), route labels.

It runs in front of Connexion's routing and validation, so a refusal or a scrape costs neither, and a request
refused here never waits: there is no queue in front of the limit.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from lambdallm.metrics import RETRY_AFTER_S, UNMATCHED, HttpMetrics, TokenCounter, send_exposition
from lambdallm.rest.problems import send_problem

METRICS_PATH = "/metrics"
# Operations that must answer under any load: liveness, readiness and the scrape itself.
NEVER_REFUSED = frozenset({"/health", "/ready", METRICS_PATH})
_ROUTING = "connexion_routing"  # where Connexion's router writes the operation it matched


class RestMetrics:
    """The REST tier's metrics, in a registry of their own (README, "Metrics")."""

    def __init__(self, max_in_flight: int) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics("lambdallm_rest", self.registry)
        now = "Requests counted against max_in_flight now"
        self.in_flight = Gauge("lambdallm_rest_requests_in_flight", now, registry=self.registry)
        limit = Gauge("lambdallm_rest_max_in_flight", "The max_in_flight setting", registry=self.registry)
        limit.set(max_in_flight)
        why = "Requests refused with 429 because max_in_flight were in flight"
        self.refused = Counter("lambdallm_rest_refused", why, registry=self.registry)
        self.tokens = TokenCounter("lambdallm_rest", self.registry)


class RouteLabels:
    """The route label of a request: the path template of the operation Connexion routed it to, else one of a
    few fixed values, never the raw path."""

    def __init__(self, spec: Path) -> None:
        paths = yaml.safe_load(spec.read_text())["paths"]
        self.templates: dict[str, str] = {
            operation["operationId"]: path
            for path, item in paths.items()
            for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation
        }
        self.fixed = {p for p in self.templates.values() if "{" not in p} | {METRICS_PATH, "/openapi.json"}

    def __call__(self, scope: Scope) -> str:
        routed = scope.get("extensions", {}).get(_ROUTING, {}).get("operation_id")
        if isinstance(routed, str) and routed in self.templates:
            return self.templates[routed]
        path: str = scope["path"]
        if path in self.fixed:
            return path
        return "/ui" if path == "/ui" or path.startswith("/ui/") else UNMATCHED


class Edge:
    """ASGI middleware in front of Connexion: serves /metrics and limits the requests in flight."""

    def __init__(self, app: ASGIApp, metrics: RestMetrics, max_in_flight: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == METRICS_PATH:
            await self._scrape(scope, send)
            return
        scope.setdefault("extensions", {})  # shared with Connexion's copy of the scope: its routing is seen here
        if path in NEVER_REFUSED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.refused.inc()
            detail = f"{self.max_in_flight} requests are in flight, the most this server takes; retry later"
            await send_problem(send, 429, "Too Many Requests", detail, {"Retry-After": str(RETRY_AFTER_S)})
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _scrape(self, scope: Scope, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            await send_exposition(self.metrics.registry, scope, send)
        else:
            await send_problem(send, 405, "Method Not Allowed", f"{METRICS_PATH} answers GET", {"Allow": "GET, HEAD"})
