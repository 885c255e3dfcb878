"""The proxy's memory is bounded whatever callers send: method names it does not serve are answered UNIMPLEMENTED
and never remembered."""

import asyncio
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from lambdallm.proxy.decoding import DecodeRequests
from lambdallm.proxy.edge import Edge
from lambdallm.proxy.metrics import ProxyMetrics
from tests.fakes.stack import fake_backend, proxy_channel, proxy_process_environment

LAMBDALLM = str(Path(sys.executable).with_name("lambdallm"))
NAME_BYTES = 4096


@pytest.mark.parametrize(
    "interceptor",
    [DecodeRequests, lambda: Edge(ProxyMetrics(4), 4, "llm.v1.LlmService")],
    ids=["decoding", "edge"],
)
async def test_the_interceptors_caches_keep_only_served_methods(interceptor):
    cache = interceptor()
    served = grpc.unary_unary_rpc_method_handler(lambda request, context: request)

    async def lookup(details):
        return served if details.method == "/llm.v1.LlmService/GenerateText" else None

    for i in range(10_000):
        details = SimpleNamespace(method=f"/unknown{i}.Service/{'m' * NAME_BYTES}", invocation_metadata=())
        assert await cache.intercept_service(lookup, details) is None
    known = SimpleNamespace(method="/llm.v1.LlmService/GenerateText", invocation_metadata=())
    first = await cache.intercept_service(lookup, known)
    assert first is not None and await cache.intercept_service(lookup, known) is first

    assert len(cache._handlers) == 1


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _unknown_calls(channel, first: int, count: int) -> None:
    async def call(i: int) -> None:
        method = channel.unary_unary(f"/unknown{i}.Service/{'m' * NAME_BYTES}")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED

    for start in range(first, first + count, 100):
        await asyncio.gather(*(call(i) for i in range(start, min(start + 100, first + count))))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the proxy's RSS from /proc")
async def test_ten_thousand_unknown_4kb_method_names_grow_the_proxy_by_less_than_5_mb(tmp_path):
    async with fake_backend() as fake:
        env = proxy_process_environment(fake.url, tmp_path / "ports.json")
        process = await asyncio.create_subprocess_exec(LAMBDALLM, "proxy", env=env, stderr=asyncio.subprocess.DEVNULL)
        try:
            while not (tmp_path / "ports.json").exists():
                assert process.returncode is None, "the proxy exited before it listened"
                await asyncio.sleep(0.02)
            port = json.loads((tmp_path / "ports.json").read_text())["grpc"]
            async with proxy_channel(f"127.0.0.1:{port}") as channel:
                await _unknown_calls(channel, 0, 5_000)  # the server's own buffers and pools settle first
                before = _rss_kb(process.pid)
                await _unknown_calls(channel, 5_000, 10_000)
                after = _rss_kb(process.pid)

        finally:
            process.terminate()
            await process.wait()

    assert after - before < 5 * 1024, f"RSS grew {after - before} KB"
