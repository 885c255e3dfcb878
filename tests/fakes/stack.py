"""Start the fake backend and a real proxy in the test's event loop, on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

import lambdallm.rest  # noqa: F401  (imports connexion with its dependency warnings silenced)
from lambdallm.proxy.backend import Backend
from lambdallm.proxy.metrics import ProxyMetrics, start_metrics_server
from lambdallm.proxy.server import create_server
from lambdallm.settings import ProxySettings
from lambdallm.tier import ANNOUNCE_FILE
from tests.fakes.backend import FakeBackend
from tests.fakes.token import present_token

API_KEY = "test-key-0123456789"
AUTHORIZATION = {"Authorization": f"Bearer {API_KEY}"}
PROXY_TOKEN = "test-proxy-token-0123456789"


def proxy_channel(target: str, token: str | None = PROXY_TOKEN) -> grpc.aio.Channel:
    """A plaintext channel to a proxy that presents `token` on every call (None: no token)."""
    return grpc.aio.insecure_channel(target, interceptors=present_token(token) if token else None)


@dataclass
class RunningProxy:
    """A started proxy: its address, the fake backend behind it, and where its metrics are scraped."""

    target: str
    fake: FakeBackend
    server: grpc.aio.Server
    metrics_url: str


def proxy_process_environment(backend_url: str, announce_file: Path) -> dict[str, str]:
    """The environment of a `lambdallm proxy` process on free ports, forwarding to `backend_url`, opened by
    PROXY_TOKEN, announcing its ports in `announce_file`."""
    return os.environ | {
        "LAMBDALLM_PROXY_PORT": "0",
        "LAMBDALLM_PROXY_METRICS_PORT": "0",
        "LAMBDALLM_PROXY_BACKEND_URL": backend_url,
        "LAMBDALLM_PROXY_TOKENS": PROXY_TOKEN,
        ANNOUNCE_FILE: str(announce_file),
    }


@asynccontextmanager
async def fake_backend() -> AsyncIterator[FakeBackend]:
    """A started FakeBackend, stopped at the end of the block."""
    fake = FakeBackend()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@asynccontextmanager
async def running_proxy(fake: FakeBackend, **overrides: object) -> AsyncIterator[RunningProxy]:
    """A real proxy on a free port forwarding to `fake`, its metrics on another free port; it takes PROXY_TOKEN,
    and probes the backend on every health check unless `ready_interval_s` says otherwise."""
    overrides = {"tokens": PROXY_TOKEN, "ready_interval_s": 0.0} | overrides
    settings = ProxySettings(port=0, backend_url=fake.url, grace_s=1.0, **overrides)  # type: ignore[arg-type]
    metrics = ProxyMetrics(settings.max_in_flight)
    async with Backend(settings) as backend:
        server, port = create_server(settings, backend, metrics=metrics)
        scraper, metrics_port = await start_metrics_server(metrics.registry, "127.0.0.1", 0)
        await server.start()
        try:
            yield RunningProxy(f"127.0.0.1:{port}", fake, server, f"http://127.0.0.1:{metrics_port}/metrics")
        finally:
            await server.stop(None)
            await scraper.cleanup()


@asynccontextmanager
async def running_rest(grpc_target: str, **overrides: object) -> AsyncIterator[str]:
    """The REST tier (create_app under uvicorn) on a free port, opened by API_KEY, presenting PROXY_TOKEN to the
    proxy; yields its base URL."""
    import asyncio

    from lambdallm.rest.app import uvicorn_server
    from lambdallm.settings import RestSettings

    overrides = {"api_keys": API_KEY, "grpc_token": PROXY_TOKEN} | overrides
    settings = RestSettings(port=0, grpc_target=grpc_target, **overrides)  # type: ignore[arg-type]
    server = uvicorn_server(settings)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
