"""The proxy's edge over real gRPC: at most max_in_flight calls (RESOURCE_EXHAUSTED beyond), and /metrics."""

import asyncio

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.fakes.backend import Reply, problem
from tests.fakes.raw_http import build_request, send_raw
from tests.fakes.stack import fake_backend, proxy_channel, running_proxy
from tests.scrape import moved, scrape_async, value

LIMIT = 2
GENERATE = "llm.v1.LlmService/GenerateText"
STREAM = "llm.v1.LlmService/GenerateTextStream"


@pytest.fixture
async def limited():
    async with fake_backend() as fake, running_proxy(fake, max_in_flight=LIMIT) as running:
        yield running


@pytest.fixture
async def stub(limited):
    async with proxy_channel(limited.target) as channel:
        yield llm_pb2_grpc.LlmServiceStub(channel)


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def collect(call):
    """The remaining messages, read one by one (grpc does not mix read() and iteration on one call)."""
    messages = []
    while (message := await call.read()) is not grpc.aio.EOF:
        messages.append(message)
    return messages


def query():
    return llm_pb2.LlmQueryRequest(prompt="Hi there you", max_tokens=10)


async def hold(stub, fake, count):
    gate = asyncio.Event()
    fake.replies.extend(Reply(hold=gate) for _ in range(count))
    calls = [asyncio.ensure_future(stub.GenerateText(query(), timeout=10)) for _ in range(count)]
    await fake.wait_for_queries(count)
    return gate, calls


async def test_one_call_past_the_limit_is_resource_exhausted_with_retry_after(stub, limited):
    gate, calls = await hold(stub, limited.fake, LIMIT)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GenerateText(query(), timeout=10)

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(refused.value.trailing_metadata())["retry-after"] == "1"
    assert f"{LIMIT} calls are in flight" in refused.value.details()
    assert len(limited.fake.requests) == LIMIT
    gate.set()
    assert all(reply.text == "echo: Hi there you" for reply in await asyncio.gather(*calls))
    assert (await stub.GenerateText(query(), timeout=10)).text == "echo: Hi there you"


async def test_a_stream_counts_until_it_ends_and_health_is_never_refused(stub, limited):
    gate = asyncio.Event()
    limited.fake.replies.extend(Reply(gates={1: gate}) for _ in range(LIMIT))
    streams = [stub.GenerateTextStream(llm_pb2.GenerateTextStreamRequest(query=query())) for _ in range(LIMIT)]
    assert [(await s.read()).text for s in streams] == ["echo:", "echo:"]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GenerateText(query(), timeout=10)
    async with proxy_channel(limited.target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    gate.set()
    for s in streams:
        assert (await collect(s))[-1].summary.output_tokens == 4  # "echo: Hi there you", word by word
    assert (await stub.GenerateText(query(), timeout=10)).output_tokens == 4


async def test_metrics_count_calls_by_method_and_code_latency_in_flight_and_tokens(stub, limited, http):
    before = await scrape_async(http, limited.metrics_url)
    gate, calls = await hold(stub, limited.fake, LIMIT)
    during = await scrape_async(http, limited.metrics_url)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GenerateText(query(), timeout=10)
    gate.set()
    await asyncio.gather(*calls)
    limited.fake.replies.append(problem(503, "down"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GenerateText(query(), timeout=10)
    stream = stub.GenerateTextStream(llm_pb2.GenerateTextStreamRequest(query=query()))
    assert [m async for m in stream][-1].summary.output_tokens == 4
    after = await scrape_async(http, limited.metrics_url)

    def grew(name, **labels):
        return moved(before, after, name, **labels)

    assert value(before, "lambdallm_proxy_max_in_flight") == LIMIT
    assert value(during, "lambdallm_proxy_rpcs_in_flight") == LIMIT
    assert value(after, "lambdallm_proxy_rpcs_in_flight") == 0
    assert grew("lambdallm_proxy_rpcs_total", method=GENERATE, code="OK") == LIMIT
    assert grew("lambdallm_proxy_rpcs_total", method=GENERATE, code="RESOURCE_EXHAUSTED") == 1
    assert grew("lambdallm_proxy_rpcs_total", method=GENERATE, code="UNAVAILABLE") == 1
    assert grew("lambdallm_proxy_rpcs_total", method=STREAM, code="OK") == 1
    assert grew("lambdallm_proxy_refused_total") == 1
    assert grew("lambdallm_proxy_rpc_duration_seconds_count", method=GENERATE) == LIMIT + 2
    assert grew("lambdallm_proxy_tokens_total", type="input") == 3 * LIMIT + 3
    assert grew("lambdallm_proxy_tokens_total", type="output") == 4 * LIMIT + 4  # "echo: Hi there you", word by word


async def test_a_call_the_client_cancels_is_counted_as_cancelled(stub, limited, http):
    before = await scrape_async(http, limited.metrics_url)
    gate, (call,) = await hold(stub, limited.fake, 1)
    call.cancel()
    await asyncio.wait_for(limited.fake.cancelled.wait(), 10)

    async def counted():
        while moved(before, await scrape_async(http, limited.metrics_url), "lambdallm_proxy_rpcs_total",
                    method=GENERATE, code="CANCELLED") < 1:  # fmt: skip
            await asyncio.sleep(0.01)

    await asyncio.wait_for(counted(), 10)
    gate.set()
    assert value(await scrape_async(http, limited.metrics_url), "lambdallm_proxy_rpcs_in_flight") == 0


@pytest.mark.parametrize("path", ["/metrics/", "/nowhere/"])
async def test_the_metrics_listener_never_redirects_to_the_host_header(limited, path):
    port = int(limited.metrics_url.split(":")[2].split("/")[0])
    request = build_request("GET", path, [], b"", port, host="evil.example")

    answer = await asyncio.to_thread(send_raw, port, request)

    assert answer.status == 404
    assert "location" not in answer.headers
