"""Start the fake backend and a real proxy in the test's event loop, on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from lambdallm.proxy.backend import Backend
from lambdallm.proxy.server import create_server
from lambdallm.settings import ProxySettings
from tests.fakes.backend import FakeBackend


@dataclass
class RunningProxy:
    """A started proxy: its address and the fake backend behind it."""

    target: str
    fake: FakeBackend
    server: grpc.aio.Server


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
    """A real proxy on a free port forwarding to `fake`."""
    settings = ProxySettings(port=0, backend_url=fake.url, grace_s=1.0, **overrides)  # type: ignore[arg-type]
    async with Backend(settings) as backend:
        server, port = create_server(settings, backend)
        await server.start()
        try:
            yield RunningProxy(f"127.0.0.1:{port}", fake, server)
        finally:
            await server.stop(None)
