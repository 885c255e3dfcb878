"""Each key's limits shared by replicas through a real redis-server (issue 24): N requests in total, not N per
replica; Redis away: "open" counts in each replica alone, "closed" refuses, both logged and in the metrics."""

import asyncio
import logging
from contextlib import AsyncExitStack

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from lambdallm.rest.keys import Limits, add_key
from lambdallm.rest.limit_store import store_for
from lambdallm.rest.redis_store import RedisStore
from lambdallm.rest.usage import UsageMetrics
from lambdallm.settings import RestSettings, SettingsError, load
from tests.fakes.llm_service import FakeLlmService, fake_llm_service
from tests.fakes.servers import redis_server
from tests.fakes.stack import running_rest
from tests.rest.test_key_limits import fresh_window
from tests.rest.test_keys import PEPPER
from tests.rest.test_query import VALID, assert_problem
from tests.scrape import samples, value


@pytest.fixture(scope="module")
def redis_process():
    with redis_server() as server:
        yield server


@pytest.fixture
def redis(redis_process):
    """The module's redis-server, emptied: each test's counters start from nothing."""
    if redis_process.process.poll() is not None:  # a test that stopped it failed before starting it again
        redis_process.start()
    with Redis.from_url(redis_process.url) as client:
        client.flushall()
    return redis_process


@pytest.fixture
def service():
    return FakeLlmService()


async def replicas(stack, service, tmp_path, limits, count=2, **overrides):
    """`count` REST replicas before `service` sharing one keys file (team-a under `limits`); their clients."""
    secret = add_key(tmp_path / "keys.json", PEPPER.encode(), "team-a", limits)
    target = await stack.enter_async_context(fake_llm_service(service))
    settings = {"keys_file": str(tmp_path / "keys.json"), "keys_pepper": PEPPER, **overrides}
    clients = []
    for _ in range(count):
        url = await stack.enter_async_context(running_rest(target, **settings))
        headers = {"Authorization": f"Bearer {secret}"}
        clients.append(await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10, headers=headers)))
    return clients


async def test_a_keys_requests_per_minute_hold_across_replicas(redis, service, tmp_path):
    await fresh_window()
    async with AsyncExitStack() as stack:
        first, second = await replicas(stack, service, tmp_path, Limits(requests_per_minute=3), redis_url=redis.url)
        answers = [await client.post("/query", json=VALID) for client in (first, second, first, second, first)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert_problem(answers[3], 429, "requests_per_minute limit (3)")
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60


async def test_concurrent_streams_are_counted_across_replicas(redis, service, tmp_path):
    service.gate = asyncio.Event()
    async with AsyncExitStack() as stack:
        first, second = await replicas(stack, service, tmp_path, Limits(concurrent_streams=1), redis_url=redis.url)
        async with first.stream("POST", "/query", json=VALID, headers={"Accept": "text/event-stream"}) as held:
            lines = held.aiter_lines()
            await anext(lines)
            refused = await second.post("/query", json=VALID)
            service.gate.set()
            [line async for line in lines]
        again = await second.post("/query", json=VALID)

    assert_problem(refused, 429, "concurrent_streams limit (1)")
    assert again.status_code == 200, again.text


async def test_with_redis_away_open_counts_in_each_replica_and_says_so(redis, service, tmp_path, caplog):
    await fresh_window()
    caplog.set_level(logging.INFO)
    async with AsyncExitStack() as stack:
        (client,) = await replicas(
            stack, service, tmp_path, Limits(requests_per_minute=2), count=1, redis_url=redis.url, redis_retry_s=0.2
        )
        assert (await client.post("/query", json=VALID)).status_code == 200
        redis.stop()
        try:
            during = [(await client.post("/query", json=VALID)).status_code for _ in range(3)]
            away = samples((await client.get("/metrics")).text)
        finally:
            redis.start()
        await asyncio.sleep(0.3)  # past redis_retry_s: the next request tries Redis again
        assert (await client.post("/query", json=VALID)).status_code in (200, 429)
        back = samples((await client.get("/metrics")).text)

    assert during == [200, 200, 429]  # the local counters began empty: two more, then the limit
    assert value(away, "lambdallm_rest_limits_store_up") == 0
    assert value(away, "lambdallm_rest_limits_store_errors_total") >= 1
    assert value(back, "lambdallm_rest_limits_store_up") == 1
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("limits store unreachable") == 1 and "limits store reachable again" in messages


async def test_with_redis_away_closed_refuses_limited_keys_with_a_503(redis, service, tmp_path):
    async with AsyncExitStack() as stack:
        (client,) = await replicas(
            stack,
            service,
            tmp_path,
            Limits(requests_per_minute=100),
            count=1,
            redis_url=redis.url,
            redis_failure="closed",
        )
        redis.stop()
        try:
            refused = await client.post("/query", json=VALID)
        finally:
            redis.start()

    body = assert_problem(refused, 503)
    assert (body["title"], body["detail"]) == (
        "Service Unavailable",
        "the limits store is unreachable, and this server refuses limited keys without it",
    )
    assert refused.headers["retry-after"] == "1"
    assert service.requests == []


def test_a_redis_url_that_is_not_one_stops_the_tier_naming_it():
    with pytest.raises(SettingsError, match="redis_url"):
        store_for(RestSettings(redis_url="http://127.0.0.1:6379"), UsageMetrics(CollectorRegistry()))


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("LAMBDALLM_REST_REDIS_FAILURE", "maybe"),
        ("LAMBDALLM_REST_REDIS_TIMEOUT_S", "0"),
        ("LAMBDALLM_REST_REDIS_RETRY_S", "x"),
    ],
)
def test_a_bad_redis_setting_stops_the_tier_naming_it(variable, text):
    with pytest.raises(SettingsError, match=variable):
        load(RestSettings, "rest", environ={variable: text})


async def test_a_stream_place_is_renewed_while_it_lasts_and_comes_back_when_its_replica_dies(redis):
    limits, key = Limits(concurrent_streams=1), "team-a"
    alive, dying, other = (RedisStore(AsyncRedis.from_url(redis.url), lease_s=0.6) for _ in range(3))
    try:
        assert await alive.admit(key, limits, "alive") is None
        await asyncio.sleep(1.2)  # two leases long: renewed meanwhile
        assert (await other.admit(key, limits, "other")).limit == "concurrent_streams"
        await alive.finish(key, limits, "alive", 0)

        assert await dying.admit(key, limits, "dying") is None
        dying._renewer.cancel()  # its process is gone: nobody renews, nobody gives the place back
        assert (await other.admit(key, limits, "other")).limit == "concurrent_streams"
        await asyncio.sleep(0.8)
        assert await other.admit(key, limits, "other") is None
    finally:
        for store in (alive, dying, other):
            await store.aclose()
