"""The proxy's metrics: their registry, and Prometheus /metrics over HTTP on a port of its own (uvicorn, with
every HTTP tier's limits). The edge (proxy/edge.py) counts the calls; no answer to a client depends on this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lambdallm import tier
from lambdallm.http_protocol import ConnectionLimits, ProblemHttpProtocol
from lambdallm.metrics import LATENCY_BUCKETS, Children, TokenCounter, send_exposition
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
