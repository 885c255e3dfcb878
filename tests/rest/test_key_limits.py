"""Each key's limits (issue 24) with the in-process store: requests and tokens per minute and concurrent streams,
a 429 naming the limit with a Retry-After from the window, on /query (problem+json) and /v1 (OpenAI's error)."""

import asyncio
import logging
import time

import httpx
import openai
import pytest

from lambdallm import cli
from lambdallm.metrics import RETRY_AFTER_S
from lambdallm.rest.keys import Limits, add_key
from lambdallm.rest.limit_store import WINDOW_S, LocalStore, Refusal
from tests.fakes.llm_service import DEFAULT_MODEL, FakeLlmService, fake_llm_service
from tests.fakes.stack import running_rest
from tests.rest.test_keys import PEPPER
from tests.rest.test_query import VALID, assert_problem
from tests.scrape import samples, value

CHAT = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
TOKENS_PER_ANSWER = 7 + 3  # FakeLlmService's usage: 7 in, one out per piece


async def fresh_window(needed_s: float = 10.0) -> None:
    """Wait, if need be, until `needed_s` of the current one-minute window remain: a test that counts within one
    window must not cross into the next."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < needed_s:
        await asyncio.sleep(left + 0.05)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_requests_per_minute_refuse_until_the_window_ends():
    clock = Clock(6000 + 45.2)  # 45.2 s into a minute
    store, limits = LocalStore(clock), Limits(requests_per_minute=2)

    assert await store.admit("a", limits, "1") is None
    assert await store.admit("a", limits, "2") is None
    assert await store.admit("a", limits, "3") == Refusal("requests_per_minute", 2, 15)
    assert await store.admit("b", limits, "4") is None  # another key counts apart
    clock.now = 6060.0
    assert await store.admit("a", limits, "5") is None


async def test_tokens_per_minute_count_the_answers_and_refuse_once_used():
    clock = Clock(6000 + 59.5)
    store, limits = LocalStore(clock), Limits(tokens_per_minute=10)

    assert await store.admit("a", limits, "1") is None
    await store.finish("a", limits, "1", 10)
    assert await store.admit("a", limits, "2") == Refusal("tokens_per_minute", 10, 1)


async def test_the_answers_tokens_add_up_from_zero_in_each_window():
    clock = Clock(6000.0)
    store, limits = LocalStore(clock), Limits(tokens_per_minute=10)

    assert await store.admit("a", limits, "1") is None
    await store.finish("a", limits, "1", 9)
    assert await store.admit("a", limits, "2") is None  # 9 of 10: one token left
    await store.finish("a", limits, "2", 1)
    assert await store.admit("a", limits, "3") == Refusal("tokens_per_minute", 10, 60)
    clock.now = 6060.0
    assert await store.admit("a", limits, "4") is None


async def test_each_stream_that_ends_frees_one_of_the_keys_streams():
    store, limits = LocalStore(Clock(6000)), Limits(concurrent_streams=2)

    assert await store.admit("a", limits, "1") is None
    assert await store.admit("a", limits, "2") is None
    await store.finish("a", limits, "1", 0)
    assert await store.admit("a", limits, "3") is None
    assert await store.admit("a", limits, "4") == Refusal("concurrent_streams", 2, RETRY_AFTER_S)


async def test_a_stream_is_held_until_it_finishes_and_a_refusal_spends_no_request():
    store, limits = LocalStore(Clock(6000)), Limits(requests_per_minute=2, concurrent_streams=1)

    assert await store.admit("a", limits, "1") is None
    assert await store.admit("a", limits, "2") == Refusal("concurrent_streams", 1, RETRY_AFTER_S)
    await store.finish("a", limits, "1", 0)
    assert await store.admit("a", limits, "3") is None  # the refused one did not count


@pytest.fixture
def service():
    return FakeLlmService()


@pytest.fixture
def team_a(tmp_path):
    def make(limits):
        secret = add_key(tmp_path / "keys.json", PEPPER.encode(), "team-a", limits)
        return secret, {"keys_file": str(tmp_path / "keys.json"), "keys_pepper": PEPPER}

    return make


async def test_over_its_requests_per_minute_a_key_gets_a_429_naming_the_limit(service, team_a, caplog):
    await fresh_window()
    caplog.set_level(logging.INFO)
    secret, overrides = team_a(Limits(requests_per_minute=2))
    async with (
        fake_llm_service(service) as target,
        running_rest(target, **overrides) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        for _ in range(2):
            assert (await client.post("/query", json=VALID)).status_code == 200
        refused = await client.post("/query", json=VALID)
        scraped = samples((await client.get("/metrics")).text)

    body = assert_problem(refused, 429, "key 'team-a' is over its requests_per_minute limit (2)")
    assert body["title"] == "Too Many Requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert f"retry after {refused.headers['retry-after']} s" in body["detail"]
    assert secret not in refused.text
    assert len(service.requests) == 2  # the refused one never reached the model
    assert value(scraped, "lambdallm_rest_key_refused_total", key="team-a", limit="requests_per_minute") == 1
    assert value(scraped, "lambdallm_rest_key_requests_total", key="team-a", model=DEFAULT_MODEL) == 2
    assert value(scraped, "lambdallm_rest_key_tokens_total", key="team-a", model=DEFAULT_MODEL, type="input") == 14
    assert value(scraped, "lambdallm_rest_key_tokens_total", key="team-a", model=DEFAULT_MODEL, type="output") == 6
    [record] = [r for r in caplog.records if r.getMessage() == "key over its limit"]  # the operator's side
    assert (record.levelname, record.key, record.limit) == ("INFO", "team-a", "requests_per_minute")


async def test_on_v1_the_429_is_openais_rate_limit_error_with_retry_after(service, team_a):
    await fresh_window()
    secret, overrides = team_a(Limits(requests_per_minute=1))
    async with (
        fake_llm_service(service) as target,
        running_rest(target, **overrides) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0) as client,
    ):
        await client.chat.completions.create(**CHAT)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(**CHAT)

    response = refused.value.response
    assert response.headers["content-type"] == "application/json"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "requests_per_minute" in error["message"]


async def test_over_its_tokens_per_minute_a_key_waits_for_the_next_window(service, team_a):
    await fresh_window()
    secret, overrides = team_a(Limits(tokens_per_minute=TOKENS_PER_ANSWER))
    async with (
        fake_llm_service(service) as target,
        running_rest(target, **overrides) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        streamed = await client.post("/query", json=VALID, headers={"Accept": "text/event-stream"})
        assert streamed.status_code == 200  # a streamed answer's usage counts too
        refused = await client.post("/query", json=VALID)
        scraped = samples((await client.get("/metrics")).text)

    assert_problem(refused, 429, f"tokens_per_minute limit ({TOKENS_PER_ANSWER})")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Under its key and its model, as a whole answer's usage is.
    assert value(scraped, "lambdallm_rest_key_requests_total", key="team-a", model=DEFAULT_MODEL) == 1


async def test_a_key_holds_its_concurrent_streams_until_they_end(service, team_a):
    secret, overrides = team_a(Limits(concurrent_streams=1))
    service.gate = asyncio.Event()
    async with (
        fake_llm_service(service) as target,
        running_rest(target, **overrides) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        headers = {"Accept": "text/event-stream"}
        async with client.stream("POST", "/query", json=VALID, headers=headers) as first:
            lines = first.aiter_lines()
            await anext(lines)  # the stream is under way
            refused = await client.post("/query", json=VALID)
            service.gate.set()
            assert [line async for line in lines if line.startswith("event:")][-1] == "event: done"
        again = await client.post("/query", json=VALID)

    assert_problem(refused, 429, "concurrent_streams limit (1)")
    assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
    assert again.status_code == 200, again.text


async def test_keys_usage_sums_the_replicas_metrics_into_a_table(service, team_a, capsys, monkeypatch, tmp_path):
    secret, overrides = team_a(Limits())
    monkeypatch.setenv("LAMBDALLM_REST_KEYS_FILE", overrides["keys_file"])
    monkeypatch.chdir(tmp_path)
    async with (
        fake_llm_service(service) as target,
        running_rest(target, **overrides) as first,
        running_rest(target, **overrides) as second,
    ):
        for url, count in ((first, 2), (second, 1)):
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as client:
                for _ in range(count):
                    assert (await client.post("/query", json=VALID)).status_code == 200
        metrics = ["--metrics", f"{first}/metrics", "--metrics", f"{second}/metrics"]
        status = await asyncio.to_thread(cli.main, ["keys", "usage", *metrics])

    out = capsys.readouterr().out
    assert status == 0
    header, *rows = [line.split() for line in out.splitlines()]
    assert header == ["key", "model", "requests", "input", "tokens", "output", "tokens"]
    assert ["team-a", DEFAULT_MODEL, "3", "21", "9"] in rows
    assert secret not in out
