"""The REST tier over several proxies (issue 24): calls go round robin; a call that a lost proxy failed before
any answer is tried on another; a proxy's own UNAVAILABLE (the backend is down) is not tried again."""

import grpc
import httpx

from lambdallm.proxy.errors import NO_RETRY
from tests.fakes.llm_service import Failure, FakeLlmService, fake_llm_service
from tests.fakes.servers import free_port
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.rest.test_query import VALID, assert_problem


async def test_calls_go_round_robin_over_the_proxies_named_in_grpc_target():
    first, second = FakeLlmService(), FakeLlmService()
    async with (
        fake_llm_service(first) as one,
        fake_llm_service(second) as two,
        running_rest(f"ipv4:{one},{two}") as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        # round_robin uses a proxy once its connection is ready; the second may still be connecting at first.
        for _ in range(20):
            if first.requests and second.requests:
                break
            assert (await client.post("/query", json=VALID)).status_code == 200
        assert first.requests and second.requests  # both proxies take calls
        first.requests.clear()
        second.requests.clear()
        statuses = [(await client.post("/query", json=VALID)).status_code for _ in range(6)]

    assert statuses == [200] * 6
    assert len(first.requests) == 3 and len(second.requests) == 3  # then in turn


async def test_a_proxy_that_cannot_be_reached_is_passed_over():
    service = FakeLlmService()
    async with (
        fake_llm_service(service) as live,
        running_rest(f"ipv4:127.0.0.1:{free_port()},{live}") as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        statuses = [(await client.post("/query", json=VALID)).status_code for _ in range(4)]

    assert statuses == [200] * 4


async def test_a_lost_proxys_unavailable_is_retried_once_and_the_proxys_own_is_not():
    service = FakeLlmService(failure=Failure(grpc.StatusCode.UNAVAILABLE, "connection lost"))
    async with (
        fake_llm_service(service) as target,
        running_rest(target) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        lost = await client.post("/query", json=VALID)
        tried = len(service.requests)
        service.failure = Failure(grpc.StatusCode.UNAVAILABLE, "backend unreachable", trailers=(NO_RETRY,))
        own = await client.post("/query", json=VALID)

    assert_problem(lost, 503)
    assert tried == 2
    assert_problem(own, 503)
    assert len(service.requests) == tried + 1
