"""The proxy's edge: at most `max_in_flight` generation calls at once (RESOURCE_EXHAUSTED beyond), and every
call counted in the proxy's metrics (their registry and /metrics listener: proxy/metrics.py).

Health checking and reflection are never refused, so readiness stays truthful under load.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from lambdallm.metrics import RETRY_AFTER_S
from lambdallm.proxy.errors import ORIGIN_TRAILER
from lambdallm.proxy.metrics import ProxyMetrics
from lambdallm.proxy.wrapping import wrapped


class Edge(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Measures every unary and server-streaming call; limits the calls of `limited_service` in flight."""

    def __init__(self, metrics: ProxyMetrics, max_in_flight: int, limited_service: str) -> None:
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.limited_prefix = f"/{limited_service}/"
        self.in_flight = 0
        # Each served method's measured handler, built at its first call (the methods are fixed at start, and an
        # unknown one is never kept, so the map's size is bounded).
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = str(handler_call_details.method)
        if (measured := self._handlers.get(method)) is not None:
            return measured
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED, and no label is made for it
            return handler
        self._handlers[method] = self._measured(method, handler)
        return self._handlers[method]

    def _measured(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        limited = method.startswith(self.limited_prefix)
        label = method.lstrip("/")

        async def enter(context: grpc.aio.ServicerContext) -> float:
            return await self._enter(context, label, limited)

        def leave(started: float, status: grpc.StatusCode) -> None:
            self._leave(label, limited, status.name, started)

        return wrapped(handler, enter, leave)  # reflection's bidirectional stream: neither limited nor measured

    async def _enter(self, context: grpc.aio.ServicerContext, method: str, limited: bool) -> float:
        started = time.perf_counter()
        if not limited:
            return started
        if self.in_flight >= self.max_in_flight:
            self.metrics.refused.inc()
            self._record(method, "RESOURCE_EXHAUSTED", started)
            context.set_trailing_metadata((ORIGIN_TRAILER, ("retry-after", str(RETRY_AFTER_S))))
            detail = f"{self.max_in_flight} calls are in flight, the most this proxy takes; retry later"
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, detail)
        self.in_flight += 1
        self.metrics.in_flight.inc()
        return started

    def _leave(self, method: str, limited: bool, code: str, started: float) -> None:
        if limited:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
        self._record(method, code, started)

    def _record(self, method: str, code: str, started: float) -> None:
        self.metrics.call_count(method, code).inc()
        self.metrics.call_latency(method).observe(time.perf_counter() - started)
