"""The REST tier's edge over real HTTP: at most max_in_flight requests at once (429 beyond), and /metrics."""

import asyncio

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lambdallm.rest.metrics import RestMetrics
from tests.fakes.backend import Reply
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.scrape import moved, scrape_async, value

VALID = {"prompt": "Hi there you", "max_tokens": 10}
LIMIT = 3


@pytest.fixture
async def limited(proxy):
    async with (
        running_rest(proxy.target, max_in_flight=LIMIT) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        yield client


async def scrape(http):
    return await scrape_async(http, "/metrics")


async def hold(http, fake, count):
    """Start `count` requests that the fake backend holds until the returned event is set."""
    gate = asyncio.Event()
    fake.replies.extend(Reply(hold=gate) for _ in range(count))
    calls = [asyncio.create_task(http.post("/query", json=VALID)) for _ in range(count)]
    await fake.wait_for_queries(count)
    return gate, calls


async def streaming(http, first_event_read):
    """An SSE request that signals once its first event has arrived, then reads the rest."""
    async with http.stream("POST", "/query", json=VALID, headers={"Accept": "text/event-stream"}) as response:
        lines = response.aiter_lines()
        seen = [await anext(lines)]
        first_event_read.release()
        seen.extend([line async for line in lines])
        return response.status_code, seen


async def test_one_request_past_the_limit_is_a_429_at_once_and_served_again_once_they_end(limited, fake):
    gate, calls = await hold(limited, fake, LIMIT)

    refused = await limited.post("/query", json=VALID, headers={"X-Request-ID": "over-1"})

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-request-id"] == "over-1"
    assert refused.json()["request_id"] == "over-1"
    assert refused.json()["title"] == "Too Many Requests"
    assert refused.json()["detail"] == f"{LIMIT} requests are in flight, the most this server takes; retry later"
    assert len(fake.requests) == LIMIT  # refused before it reached the proxy
    gate.set()
    assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * LIMIT
    assert (await limited.post("/query", json=VALID)).status_code == 200


async def test_open_event_streams_count_until_they_end(limited, fake):
    gate, first_events = asyncio.Event(), asyncio.Semaphore(0)
    fake.replies.extend(Reply(gates={1: gate}) for _ in range(LIMIT))  # each stream stops after its first event
    calls = [asyncio.create_task(streaming(limited, first_events)) for _ in range(LIMIT)]
    for _ in range(LIMIT):
        await asyncio.wait_for(first_events.acquire(), 10)

    assert (await limited.post("/query", json=VALID, headers={"Accept": "text/event-stream"})).status_code == 429

    gate.set()
    answers = await asyncio.gather(*calls)
    assert all(status == 200 and "event: done" in seen for status, seen in answers)
    assert (await limited.post("/query", json=VALID)).status_code == 200


async def test_health_readiness_and_metrics_are_never_refused(limited, fake):
    gate, calls = await hold(limited, fake, LIMIT)

    assert (await limited.get("/health")).status_code == 200
    assert (await limited.get("/ready")).status_code == 200
    assert (await limited.get("/metrics")).status_code == 200
    assert (await limited.get("/health")).status_code == 200

    gate.set()
    await asyncio.gather(*calls)


async def test_metrics_count_requests_by_route_template_latency_in_flight_and_tokens(limited, fake):
    before = await scrape(limited)
    assert value(before, "lambdallm_rest_max_in_flight") == LIMIT
    gate, calls = await hold(limited, fake, LIMIT)

    during = await scrape(limited)
    await limited.post("/query", json=VALID)  # refused
    gate.set()
    await asyncio.gather(*calls)
    await limited.post("/query", json={"prompt": "x"})  # 400: max_tokens missing
    await limited.get("/no/such/path/42")
    after = await scrape(limited)

    def grew(name, **labels):
        return moved(before, after, name, **labels)

    assert value(during, "lambdallm_rest_requests_in_flight") == LIMIT
    assert value(after, "lambdallm_rest_requests_in_flight") == 0
    assert grew("lambdallm_rest_requests_total", route="/query", method="POST", status="200") == LIMIT
    assert grew("lambdallm_rest_requests_total", route="/query", method="POST", status="429") == 1
    assert grew("lambdallm_rest_requests_total", route="/query", method="POST", status="400") == 1
    assert grew("lambdallm_rest_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("lambdallm_rest_refused_total") == 1
    assert grew("lambdallm_rest_request_duration_seconds_count", route="/query", method="POST") == LIMIT + 2
    # The fake counts the prompt's three words in, and streams its echo's four words out.
    assert grew("lambdallm_rest_tokens_total", type="input") == 3 * LIMIT
    assert grew("lambdallm_rest_tokens_total", type="output") == 4 * LIMIT
    assert not any("/no/such" in str(key) for key in after)


async def test_a_streamed_answer_counts_its_tokens_from_the_summary(limited):
    before = await scrape(limited)
    response = await limited.post("/query", json=VALID, headers={"Accept": "text/event-stream"})
    after = await scrape(limited)

    assert response.status_code == 200
    assert moved(before, after, "lambdallm_rest_tokens_total", type="output") == 4


async def test_metrics_answers_only_get(limited):
    response = await limited.post("/metrics")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, HEAD"
    problem = response.json()
    assert (problem["title"], problem["detail"]) == ("Method Not Allowed", "/metrics answers GET")


async def test_metrics_answers_head_as_get_without_the_body(limited):
    got, head = await limited.get("/metrics"), await limited.head("/metrics")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) > 0


def test_the_admission_metrics_say_what_they_count():
    """Their HELP lines, which the operator reads in the scrape (docs/metrics.md has the whole list)."""
    exposition = generate_latest(RestMetrics(LIMIT).registry).decode()
    helps = {family.name: family.documentation for family in text_string_to_metric_families(exposition)}
    assert helps["lambdallm_rest_requests_in_flight"] == "Requests counted against max_in_flight now"
    assert helps["lambdallm_rest_max_in_flight"] == "The max_in_flight setting"
    assert helps["lambdallm_rest_refused"] == "Requests refused with 429 because max_in_flight were in flight"
