"""The local cloud's metrics: both servers' requests, the tokens generated, and each model's queue and slots.

The queue and the slots are read from the schedulers when Prometheus scrapes, so generating costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from lambdallm.local_cloud.models import DEFAULT, GEMMA, ModelHost
from lambdallm.metrics import UNMATCHED, HttpMetrics, TokenCounter


class CloudMetrics:
    """The local cloud's metrics, in a registry of their own, served by the Bedrock endpoint's GET /metrics."""

    def __init__(self, host: ModelHost) -> None:
        self.registry = CollectorRegistry()
        self.bedrock = HttpMetrics("lambdallm_bedrock", self.registry)
        self.apigateway = HttpMetrics("lambdallm_apigateway", self.registry)
        self.tokens = TokenCounter("lambdallm_bedrock", self.registry)
        self.registry.register(ModelCollector(host))


class ModelCollector(Collector):
    """Each loaded model's slots, busy slots and queue, by model id, as its scheduler says at scrape time; and its
    forward passes and their time by kind (`prompt`, `generate`), as its engine counted them."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        slots = GaugeMetricFamily("lambdallm_bedrock_slots", "Requests the model generates at once", labels=["model"])
        busy = GaugeMetricFamily("lambdallm_bedrock_busy_slots", "Slots generating now", labels=["model"])
        queue = GaugeMetricFamily(
            "lambdallm_bedrock_queue_depth", "Requests admitted and waiting for a slot", labels=["model"]
        )
        steps = CounterMetricFamily(
            "lambdallm_bedrock_decode_steps", "Forward passes of the model, by kind", labels=["model", "kind"]
        )
        seconds = CounterMetricFamily(
            "lambdallm_bedrock_decode_seconds", "Time in the model's forward passes, by kind", labels=["model", "kind"]
        )
        model_ids = {DEFAULT: self.host.default_id, GEMMA: self.host.gemma_id}
        for key, model in list(self.host.models.items()):
            scheduler, label = model.scheduler, [model_ids.get(key, key)]
            slots.add_metric(label, scheduler.slots)
            busy.add_metric(label, scheduler.busy)
            queue.add_metric(label, scheduler.waiting)
            counted = scheduler.engine.steps
            steps.add_metric([*label, "prompt"], counted.prompt_steps)
            steps.add_metric([*label, "generate"], counted.generate_steps)
            seconds.add_metric([*label, "prompt"], counted.prompt_seconds)
            seconds.add_metric([*label, "generate"], counted.generate_seconds)
        yield from (slots, busy, queue, steps, seconds)


def bedrock_route(scope: Scope) -> str:
    """The Bedrock route a request matched (`/model/{model_id}/converse`), else `unmatched`."""
    route = scope.get("route")
    return str(route.path).replace(":path}", "}") if route is not None else UNMATCHED


def apigateway_route(routes: Container[str]) -> Callable[[Scope], str]:
    """The label function of the local API Gateway: its resource path, else `unmatched`."""

    def route_of(scope: Scope) -> str:
        path: str = scope["path"]
        return path if path in routes else UNMATCHED

    return route_of
