"""The proxy's edge over real gRPC: at most max_in_flight calls (RESOURCE_EXHAUSTED beyond), and /metrics."""

import asyncio
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.metrics import LATENCY_BUCKETS
from lambdallm.proxy.metrics import ProxyMetrics
from lambdallm.proxy.wrapping import status_of
from tests.fakes.backend import Reply, problem
from tests.fakes.raw_http import build_request, send_raw
from tests.fakes.stack import fake_backend, proxy_channel, running_proxy
from tests.scrape import moved, samples, scrape_async, value

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
    started = time.perf_counter()
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
    elapsed = time.perf_counter() - started
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
    # Each call's time lies within the test's: the sum of the GenerateText calls' at most that many times it.
    assert 0 < grew("lambdallm_proxy_rpc_duration_seconds_sum", method=GENERATE) <= (LIMIT + 2) * elapsed
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


def test_the_proxy_metrics_say_what_they_count():
    """Their HELP lines and labels, which the operator reads in the scrape (docs/metrics.md has the whole list)."""
    metrics = ProxyMetrics(LIMIT)
    metrics.call_count(GENERATE, "OK").inc()
    metrics.call_latency(GENERATE).observe(0.1)
    metrics.unauthenticated.inc()
    exposition = generate_latest(metrics.registry).decode()
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    helps = {name: family.documentation for name, family in families.items() if not name.endswith("_created")}
    assert helps == {
        "lambdallm_proxy_rpcs": "gRPC calls handled",
        "lambdallm_proxy_rpc_duration_seconds": "Time to the call's status (the whole stream for GenerateTextStream)",
        "lambdallm_proxy_rpcs_in_flight": "Generation calls counted against max_in_flight now",
        "lambdallm_proxy_max_in_flight": "The max_in_flight setting",
        "lambdallm_proxy_refused": "Generation calls refused with RESOURCE_EXHAUSTED because max_in_flight were "
        "in flight",
        "lambdallm_proxy_unauthenticated": "Calls refused with UNAUTHENTICATED: LlmService without a valid token, "
        "health with a wrong one",
        "lambdallm_proxy_tokens": "Tokens reported by the answers",
    }
    assert {s.name: s.labels for s in families["lambdallm_proxy_rpcs"].samples if s.name.endswith("_total")} == {
        "lambdallm_proxy_rpcs_total": {"method": GENERATE, "code": "OK"}
    }
    buckets = [s.labels["le"] for s in families["lambdallm_proxy_rpc_duration_seconds"].samples if "le" in s.labels]
    assert buckets == [str(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]
    assert value(samples(exposition), "lambdallm_proxy_unauthenticated_total") == 1
    assert value(samples(exposition), "lambdallm_proxy_rpc_duration_seconds_count", method=GENERATE) == 1


async def test_the_metrics_listener_answers_head_without_the_body_and_other_methods_with_405(limited, http):
    got = await http.get(limited.metrics_url)
    head = await http.head(limited.metrics_url)
    posted = await http.post(limited.metrics_url, content=b"x")
    elsewhere = await http.get(limited.metrics_url.replace("/metrics", "/other"))

    assert (head.status_code, head.content, head.headers["content-type"]) == (200, b"", got.headers["content-type"])
    assert int(head.headers["content-length"]) == len(got.content) > 0
    for answer, status, title in ((posted, 405, "Method Not Allowed"), (elsewhere, 404, "Not Found")):
        assert (answer.status_code, answer.headers["content-type"]) == (status, "application/problem+json")
        assert answer.json() == {"type": "about:blank", "title": title, "status": status}
        assert int(answer.headers["content-length"]) == len(answer.content)


async def test_a_stream_past_the_limit_or_failing_is_counted_with_its_code(stub, limited, http):
    before = await scrape_async(http, limited.metrics_url)
    gate, calls = await hold(stub, limited.fake, LIMIT)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await collect(stub.GenerateTextStream(llm_pb2.GenerateTextStreamRequest(query=query()), timeout=10))
    gate.set()
    await asyncio.gather(*calls)
    limited.fake.replies.append(problem(503, "down"))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await collect(stub.GenerateTextStream(llm_pb2.GenerateTextStreamRequest(query=query()), timeout=10))
    after = await scrape_async(http, limited.metrics_url)

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(refused.value.trailing_metadata())["retry-after"] == "1"
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert moved(before, after, "lambdallm_proxy_rpcs_total", method=STREAM, code="RESOURCE_EXHAUSTED") == 1
    assert moved(before, after, "lambdallm_proxy_rpcs_total", method=STREAM, code="UNAVAILABLE") == 1
    assert value(after, "lambdallm_proxy_rpcs_in_flight") == 0


def test_a_call_is_counted_with_the_code_it_ends_with():
    """An abort's code, a cancel, and UNKNOWN for any other exception whatever code the context holds."""

    class Context:
        def code(self):
            return grpc.StatusCode.INTERNAL

    assert status_of(grpc.aio.AbortError(), Context()) == grpc.StatusCode.INTERNAL
    assert status_of(asyncio.CancelledError(), Context()) == grpc.StatusCode.CANCELLED
    assert status_of(RuntimeError("boom"), Context()) == grpc.StatusCode.UNKNOWN


async def test_every_call_that_ends_gives_its_slot_back_and_no_more(stub, limited):
    for round_ in (1, 2):  # the second round needs every slot of the first back, and only those
        gate = asyncio.Event()
        limited.fake.replies.extend(Reply(hold=gate) for _ in range(LIMIT))
        calls = [asyncio.ensure_future(stub.GenerateText(query(), timeout=10)) for _ in range(LIMIT)]
        await limited.fake.wait_for_queries(round_ * LIMIT)  # this round's calls are all in flight at once
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GenerateText(query(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        gate.set()
        assert all(reply.text == "echo: Hi there you" for reply in await asyncio.gather(*calls))
