"""The proxy's edge: at most `max_in_flight` generation calls at once (RESOURCE_EXHAUSTED beyond), metrics of
every call, and Prometheus /metrics over HTTP on a port of its own (uvicorn, with every HTTP tier's limits).

Health checking and reflection are never refused, so readiness stays truthful under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lambdallm import tier
from lambdallm.http_protocol import ConnectionLimits, ProblemHttpProtocol
from lambdallm.metrics import LATENCY_BUCKETS, RETRY_AFTER_S, Children, TokenCounter, send_exposition
from lambdallm.proxy.errors import ORIGIN_TRAILER
from lambdallm.proxy.wrapping import wrapped
from llm_wire.problems import PROBLEM_JSON, problem_bytes


class ProxyMetrics:
    """The proxy's metrics, in a registry of their own (docs/metrics.md)."""

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
        self.call_count, self.call_latency = Children(self.calls), Children(self.latency)
        why = "Calls refused with UNAUTHENTICATED: LlmService without a valid token, health with a wrong one"
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


DEFAULT_LIMITS = ConnectionLimits(body_timeout_s=5.0, max_connections=64)


class MetricsServer:
    """The proxy's /metrics listener: uvicorn with the connection limits every HTTP tier has (docs/security.md)."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server, self.task = server, task

    async def cleanup(self) -> None:
        """Stop listening and close the connections."""
        self.server.should_exit = True
        await self.task


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the proxy owns the signals
        yield


def metrics_app(registry: CollectorRegistry) -> Any:
    """An ASGI app answering GET /metrics with `registry`, and a problem+json to anything else."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            await send_exposition(registry, scope, send)
            return
        status = 405 if scope["path"] == "/metrics" else 404
        body = problem_bytes(status)
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def start_metrics_server(
    registry: CollectorRegistry,
    host: str,
    port: int,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    keep_alive_s: int = 5,
) -> tuple[MetricsServer, int]:
    """Serve GET /metrics for `registry` on host:port (0 picks a free port) within `limits`; the server (stop it
    with `cleanup()`) and the bound port."""
    config = uvicorn.Config(
        metrics_app(registry),
        http=ProblemHttpProtocol.with_limits(limits),
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=keep_alive_s,
    )
    server = _QuietServer(config)
    sock = tier.bind_tcp(host, port)
    try:
        tier.listen(sock)  # connections queue from now on; uvicorn accepts them once it has started
    except BaseException:
        sock.close()
        raise
    task = asyncio.create_task(server.serve(sockets=[sock]))
    task.add_done_callback(lambda _: sock.close())
    bound: int = sock.getsockname()[1]
    return MetricsServer(server, task), bound
