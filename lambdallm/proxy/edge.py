"""The proxy's edge: at most `max_in_flight` generation calls at once (RESOURCE_EXHAUSTED beyond), metrics of
every call, and Prometheus /metrics over HTTP on a port of its own.

Health checking and reflection are never refused, so readiness stays truthful under load.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lambdallm import tier
from lambdallm.metrics import LATENCY_BUCKETS, RETRY_AFTER_S, TokenCounter, exposition
from lambdallm.proxy.errors import ORIGIN_TRAILER

Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


class ProxyMetrics:
    """The proxy's metrics, in a registry of their own (README, "Metrics")."""

    def __init__(self, max_in_flight: int) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter("lambdallm_proxy_rpcs", "gRPC calls handled", ["method", "code"], registry=self.registry)
        self.latency = Histogram(
            "lambdallm_proxy_rpc_duration_seconds",
            "Time to the call's status (the whole stream for GenerateTextStream)",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "lambdallm_proxy_rpcs_in_flight",
            "Generation calls counted against max_in_flight now",
            registry=self.registry,
        )
        limit = Gauge("lambdallm_proxy_max_in_flight", "The max_in_flight setting", registry=self.registry)
        limit.set(max_in_flight)
        why = "Generation calls refused with RESOURCE_EXHAUSTED because max_in_flight were in flight"
        self.refused = Counter("lambdallm_proxy_refused", why, registry=self.registry)
        why = "LlmService calls refused with UNAUTHENTICATED: no valid token (they reach nothing else)"
        self.unauthenticated = Counter("lambdallm_proxy_unauthenticated", why, registry=self.registry)
        self.tokens = TokenCounter("lambdallm_proxy", self.registry)


class Edge(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Measures every unary and server-streaming call; limits the calls of `limited_service` in flight."""

    def __init__(self, metrics: ProxyMetrics, max_in_flight: int, limited_service: str) -> None:
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.limited_prefix = f"/{limited_service}/"
        self.in_flight = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED, and no label is made for it
            return handler
        method = str(handler_call_details.method)
        limited = method.startswith(self.limited_prefix)
        label = method.lstrip("/")
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, label, limited),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, label, limited),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # reflection's bidirectional stream: neither limited nor measured

    def _unary(self, behavior: Behavior, method: str, limited: bool) -> Behavior:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = await self._enter(context, method, limited)
            code = "OK"
            try:
                return await behavior(request, context)
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                self._leave(method, limited, code, started)

        return unary

    def _stream(self, behavior: Behavior, method: str, limited: bool) -> Behavior:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = await self._enter(context, method, limited)
            code = "OK"
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for message in result:
                        yield message
                else:  # a servicer that writes through context.write
                    await result
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                self._leave(method, limited, code, started)

        return stream

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
        self.metrics.calls.labels(method, code).inc()
        self.metrics.latency.labels(method).observe(time.perf_counter() - started)


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext) -> str:
    """The status a call that raised `exc` ends with: the aborted code, CANCELLED, or gRPC's UNKNOWN."""
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code() if isinstance(exc, grpc.aio.AbortError) else None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "UNKNOWN"


async def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve GET /metrics for `registry` on host:port (0 picks a free port); the runner and the bound port."""

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = exposition(registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = tier.bind_tcp(host, port)
    try:
        tier.listen(sock)
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    bound: int = sock.getsockname()[1]
    return runner, bound
