"""`lambdallm probe`: healthy only on a 2xx answer or a SERVING health status, with the reason otherwise."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from lambdallm.probe import probe
from tests.fakes.stack import running_proxy, running_rest


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_http_healthy_on_2xx_and_not_on_an_error_status() -> None:
    async with running_rest(f"127.0.0.1:{_closed_port()}") as url:
        assert await asyncio.to_thread(probe, f"{url}/health") is None
        assert await asyncio.to_thread(probe, f"{url}/ready") == f"{url}/ready: HTTP 503"


def test_http_not_healthy_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/health"
    assert "Connection refused" in (probe(url) or "")


async def test_grpc_serving_while_the_backend_answers_and_not_after(fake) -> None:
    async with running_proxy(fake) as proxy:
        assert await asyncio.to_thread(probe, f"grpc://{proxy.target}") is None
        assert await asyncio.to_thread(probe, f"grpc://{proxy.target}/llm.v1.LlmService") is None
        await fake.stop()
        assert await asyncio.to_thread(probe, f"grpc://{proxy.target}") == f"grpc://{proxy.target}/: NOT_SERVING"


def test_grpc_not_healthy_when_nothing_listens() -> None:
    target = f"127.0.0.1:{_closed_port()}"
    assert probe(f"grpc://{target}", timeout_s=1) == f"grpc://{target}/: UNAVAILABLE"


def test_the_command_exits_1_naming_the_reason() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/health"
    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", "probe", url], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"lambdallm probe: {url}: ")


def test_an_unknown_scheme_is_named() -> None:
    assert (
        probe("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1: expected http://host:port/path or grpc://host:port[/service]"
    )
