"""The proxy lets only callers with its token reach LlmService (UNAUTHENTICATED before anything else runs, whatever
backend_auth is); health checking and reflection stay open to callers that present no token, and refuse a wrong
one; a bad token setting stops it at start."""

import os
import subprocess
import sys

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.proxy.auth import presented_token, proxy_tokens
from lambdallm.settings import ProxySettings, SettingsError
from tests.fakes.stack import PROXY_TOKEN, proxy_channel, running_proxy
from tests.scrape import scrape_async, value

SERVICE = "llm.v1.LlmService"
QUERY = llm_pb2.LlmQueryRequest(prompt="Hi there", max_tokens=3)


@pytest.fixture(params=["none", "iam"])
async def proxy(request, fake, monkeypatch):
    """The proxy with each backend_auth: with "iam" it would sign a refused call with its own identity."""
    for name, value_ in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value_)
    async with running_proxy(fake, backend_auth=request.param) as running:
        yield running


async def _generate(target, token):
    async with proxy_channel(target, token) as channel:
        return await llm_pb2_grpc.LlmServiceStub(channel).GenerateText(QUERY, timeout=10)


async def _stream(target, token):
    async with proxy_channel(target, token) as channel:
        call = llm_pb2_grpc.LlmServiceStub(channel).GenerateTextStream(
            llm_pb2.GenerateTextStreamRequest(query=QUERY), timeout=10
        )
        return [message async for message in call]


@pytest.mark.parametrize("call", [_generate, _stream])
@pytest.mark.parametrize("token", [None, "wrong-token", PROXY_TOKEN + "x", PROXY_TOKEN[:-1], ""])
async def test_a_call_without_the_token_is_unauthenticated_and_reaches_nothing(proxy, call, token):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(proxy.target, token)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert proxy.fake.requests == []  # not even a signed request left for the backend
    async with httpx.AsyncClient(timeout=10) as http:
        scraped = await scrape_async(http, proxy.metrics_url)
    assert value(scraped, "lambdallm_proxy_unauthenticated_total") == 1
    assert value(scraped, "lambdallm_proxy_rpcs_in_flight") == 0


@pytest.mark.parametrize("call", [_generate, _stream])
async def test_a_call_with_the_token_is_answered(proxy, call):
    assert await call(proxy.target, PROXY_TOKEN)
    assert len(proxy.fake.requests) == 1


async def test_health_checking_and_reflection_need_no_token(proxy):
    async with grpc.aio.insecure_channel(proxy.target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        replies = [r async for r in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(requests())]

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert SERVICE in {service.name for service in replies[0].list_services_response.service}


async def _health(target, token):
    async with proxy_channel(target, token) as channel:
        return await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))


@pytest.mark.parametrize("token", ["wrong-token", PROXY_TOKEN + "x"])
async def test_a_health_check_that_presents_a_wrong_token_is_unauthenticated(proxy, token):
    """So that a REST tier whose token the proxy refuses is not ready (its /ready presents its token)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _health(proxy.target, token)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await _health(proxy.target, PROXY_TOKEN)).status == health_pb2.HealthCheckResponse.SERVING


async def test_auth_none_lets_any_caller_in(fake):
    async with running_proxy(fake, auth="none", tokens="") as proxy:
        assert (await _generate(proxy.target, None)).text


async def test_another_of_several_tokens_opens_it_too(fake, tmp_path):
    (tmp_path / "tokens").write_text("rotated-token-1\nrotated-token-2\n")
    async with running_proxy(fake, tokens=PROXY_TOKEN, tokens_file=str(tmp_path / "tokens")) as proxy:
        for token in (PROXY_TOKEN, "rotated-token-1", "rotated-token-2"):
            assert (await _generate(proxy.target, token)).text


def test_the_token_is_taken_from_the_bearer_scheme_trimmed():
    assert presented_token((("authorization", "Bearer abc "),)) == b"abc"
    assert presented_token((("authorization", "bearer abc"),)) == b"abc"
    assert presented_token((("authorization", "Basic abc"),)) is None
    assert presented_token((("x-request-id", "r"),)) is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (ProxySettings(), "no token is set"),
        (ProxySettings(tokens_file="/nonexistent/token"), "tokens_file: cannot read /nonexistent/token"),
        (ProxySettings(tokens="good-token,bad\u00e9token"), "tokens: token 2 has characters"),
    ],
)
def test_a_bad_token_setting_stops_the_proxy_naming_the_key(settings, named):
    with pytest.raises(SettingsError, match=named) as caught:
        proxy_tokens(settings)
    assert "bad\u00e9token" not in str(caught.value)  # a token is never echoed


def test_a_proxy_started_without_a_token_exits_2_naming_the_setting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDALLM_")} | {"LAMBDALLM_PROXY_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", "proxy"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2, result.stderr
    assert "no token is set" in result.stderr and "LAMBDALLM_PROXY_TOKENS" in result.stderr
    assert "Traceback" not in result.stderr
