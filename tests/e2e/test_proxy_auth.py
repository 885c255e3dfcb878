"""The real chain: the proxy answers only the REST tier, which presents the token the stack made for this run;
a caller that reaches the proxy's port without it spends nothing behind it."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.stack import Stack
from tests.scrape import moved, scrape

pytestmark = [pytest.mark.e2e]

GENERATE = "llm.v1.LlmService/GenerateText"
QUERY = llm_pb2.LlmQueryRequest(prompt="one two three", max_tokens=3)


def _generate(stack: Stack, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.grpc}") as channel:
        try:
            llm_pb2_grpc.LlmServiceStub(channel).GenerateText(QUERY, timeout=30, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK


def test_only_callers_with_the_runs_token_reach_the_backend(instant_chain: Stack) -> None:
    urls = instant_chain.metrics_urls
    before = {tier: scrape(url) for tier, url in urls.items()}

    without = _generate(instant_chain, ())
    wrong = _generate(instant_chain, (("authorization", "Bearer not-the-token"),))
    between = {tier: scrape(url) for tier, url in urls.items()}
    right = _generate(instant_chain, (("authorization", f"Bearer {instant_chain.proxy_token}"),))
    through_rest = httpx.post(
        f"{instant_chain.rest_url}/query",
        json={"prompt": "one two", "max_tokens": 2},
        headers=instant_chain.auth_headers,
        timeout=30,
    )

    assert (without, wrong, right) == (grpc.StatusCode.UNAUTHENTICATED,) * 2 + (grpc.StatusCode.OK,)
    assert through_rest.status_code == 200
    assert moved(before["proxy"], between["proxy"], "lambdallm_proxy_unauthenticated_total") == 2
    assert moved(before["proxy"], between["proxy"], "lambdallm_proxy_rpcs_total", method=GENERATE, code="OK") == 0
    answered = {"route": "/query/stream", "method": "POST", "status": "200"}  # whole answers are collected streams
    queries = "lambdallm_apigateway_requests_total"
    assert moved(before["local-cloud"], between["local-cloud"], queries, **answered) == 0  # the backend saw none
    assert moved(between["local-cloud"], scrape(urls["local-cloud"]), queries, **answered) == 2  # then two


def test_health_checking_needs_no_token(instant_chain: Stack) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{instant_chain.ports.grpc}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
