"""However often /ready is called, unauthenticated as it is, the backend sees at most one probe per the proxy's
ready_interval_s."""

import asyncio
import time

import httpx

from tests.fakes.stack import running_proxy, running_rest


def probes(fake) -> int:
    """The readiness probes (empty queries) the backend has had."""
    return sum(1 for _, body in fake.requests if body == {})


async def test_a_thousand_ready_calls_make_one_probe_per_interval_plus_one(fake):
    interval_s = 0.1
    async with (
        running_proxy(fake, ready_interval_s=interval_s) as proxy,
        running_rest(proxy.target) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        before, started = probes(fake), time.monotonic()  # those of the tiers' start are not this test's
        answers = []
        for _ in range(20):  # 50 at once, twenty times
            answers += await asyncio.gather(*(http.get("/ready") for _ in range(50)))
        elapsed_s = time.monotonic() - started

    assert [answer.status_code for answer in answers] == [200] * 1000
    assert 1 <= probes(fake) - before <= elapsed_s // interval_s + 1
