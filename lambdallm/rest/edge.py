"""The REST tier's edge: GET /metrics, and admission: at most `max_in_flight` authenticated requests at once (a
429 beyond). The metrics themselves and their route labels are rest/metrics.py.

/metrics is served in front of Connexion, so a scrape costs no routing or validation. Admission runs after
Connexion's routing and security and before its validation: only a request to an operation that needs the API
key, once its key is checked and its whole body has arrived, takes a slot, so that no unauthenticated or slow
client holds one. A request refused here never waits: there is no queue in front of the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from lambdallm.body import ClientGone, read_body
from lambdallm.metrics import RETRY_AFTER_S, send_exposition
from lambdallm.rest import routing
from lambdallm.rest.middleware import with_body
from lambdallm.rest.problems import send_problem

if TYPE_CHECKING:  # rest/metrics.py reads the routed ids from here
    from lambdallm.rest.metrics import RestMetrics

METRICS_PATH = "/metrics"


def keyed_operations(spec: Path) -> frozenset[str]:
    """The operationIds of `spec` that need the API key (a non-empty `security`, the operation's or the spec's):
    the generation work that admission counts (POST /query today, any generation route added later)."""
    document = yaml.safe_load(spec.read_text())
    default = document.get("security", [])
    keyed = set()
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation and operation.get("security", default):
                keyed.add(routed_id(operation))
    return frozenset(keyed)


def routed_id(operation: dict[str, Any]) -> str:
    """The id Connexion's router writes in the scope for `operation`: its operationId, prefixed with the
    operation's router controller if it has one (`handlers.query.generateText`), as Connexion's Resolver does."""
    controller = operation.get("x-openapi-router-controller")
    return f"{controller}.{operation['operationId']}" if controller else str(operation["operationId"])


class Edge:
    """ASGI middleware in front of Connexion: serves /metrics."""

    def __init__(self, app: ASGIApp, metrics: RestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            await self._scrape(scope, send)
            return
        scope.setdefault("extensions", {})  # shared with Connexion's copy of the scope: its routing is seen here
        await self.app(scope, receive, send)

    async def _scrape(self, scope: Scope, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            await send_exposition(self.metrics.registry, scope, send)
        else:
            await send_problem(send, 405, "Method Not Allowed", f"{METRICS_PATH} answers GET", {"Allow": "GET, HEAD"})


class Admission:
    """ASGI middleware between Connexion's security and its validation: a request routed to one of `limited`
    (authenticated by now) reads its whole body (at most `max_body_bytes`, sized or chunked), then takes one of
    `max_in_flight` slots until its answer ends, or is a 429 at once. Every other request takes none."""

    def __init__(
        self, app: ASGIApp, metrics: RestMetrics, max_in_flight: int, max_body_bytes: int, limited: frozenset[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        self.limited = limited
        self.in_flight = 0
        # Read at each scrape, not kept per request: a gauge's inc and dec take a lock each.
        metrics.in_flight.set_function(lambda: self.in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if routing.operation_id(scope) not in self.limited:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_body_bytes)
        except ClientGone:  # nobody to answer
            return
        if body is None:
            detail = f"request body exceeds {self.max_body_bytes} bytes"
            await send_problem(send, 413, "Content Too Large", detail)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.refused.inc()
            detail = f"{self.max_in_flight} requests are in flight, the most this server takes; retry later"
            await send_problem(send, 429, "Too Many Requests", detail, {"Retry-After": str(RETRY_AFTER_S)})
            return
        scope, receive = with_body(scope, receive, body)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
