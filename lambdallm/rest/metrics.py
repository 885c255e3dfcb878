"""The REST tier's metrics: their registry, and the route label of each request. The edge (rest/edge.py) serves
them and counts its refusals; no answer to a client depends on this module."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import Scope

from lambdallm.metrics import UNMATCHED, HttpMetrics, TokenCounter
from lambdallm.rest import routing
from lambdallm.rest.edge import METRICS_PATH, routed_id


class RestMetrics:
    """The REST tier's metrics, in a registry of their own (docs/metrics.md)."""

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

    def __init__(self, *specs: Path) -> None:
        self.templates: dict[str, str] = {}
        for spec in specs:
            document = yaml.safe_load(spec.read_text())
            base = urlsplit(document.get("servers", [{}])[0].get("url", "")).path.rstrip("/")
            self.templates |= {
                routed_id(operation): base + path
                for path, item in document["paths"].items()
                for operation in item.values()
                if isinstance(operation, dict) and "operationId" in operation
            }
        self.fixed = {p for p in self.templates.values() if "{" not in p} | {METRICS_PATH, "/openapi.json"}

    def __call__(self, scope: Scope) -> str:
        routed = routing.operation_id(scope)
        if isinstance(routed, str) and routed in self.templates:
            return self.templates[routed]
        path: str = scope["path"]
        if path in self.fixed:
            return path
        for fixed in ("/ui", "/playground"):  # Swagger UI's files and the playground's, one label each
            if path == fixed or path.startswith(fixed + "/"):
                return fixed
        return UNMATCHED
