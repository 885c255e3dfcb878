"""The REST tier presents the proxy's token on every call; a call with the wrong one reaches no backend and is a
502 (the tier's own misconfiguration, not the client's); a missing or bad token setting stops the tier at start."""

import httpx
import pytest

from lambdallm.rest.app import create_app, proxy_token
from lambdallm.settings import RestSettings, SettingsError
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.sse import parse_events

VALID = {"prompt": "Hi there", "max_tokens": 10}


async def test_queries_carry_the_token_to_the_backend(http, fake):
    response = await http.post("/query", json=VALID)
    stream = await http.post("/query", json=VALID, headers={"Accept": "text/event-stream"})

    assert (response.status_code, stream.status_code) == (200, 200)
    assert parse_events(stream.text)[-1][0] == "done"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("overrides", [{"grpc_token": "not-the-proxys-token"}, {"grpc_auth": "none"}])
async def test_a_tier_without_the_proxys_token_gets_a_502_and_spends_nothing(proxy, fake, overrides):
    async with (
        running_rest(proxy.target, **overrides) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as http,
    ):
        response = await http.post("/query", json=VALID)
        stream = await http.post("/query", json=VALID, headers={"Accept": "text/event-stream"})

    for answer in (response, stream):
        assert answer.status_code == 502
        assert answer.json()["detail"] == "the call to the gRPC proxy failed: UNAUTHENTICATED"
    assert fake.requests == []


async def test_a_tier_whose_token_the_proxy_refuses_is_not_ready(proxy):
    async with (
        running_rest(proxy.target, grpc_token="not-the-proxys-token") as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        ready = await http.get("/ready")

    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    detail = "the gRPC proxy refuses this tier's token (UNAUTHENTICATED): check grpc_token or grpc_token_file"
    assert ready.json()["detail"] == detail  # what to check, in the words of the settings
    assert "not-the-proxys-token" not in ready.text


def test_the_token_comes_from_the_setting_else_its_file(tmp_path):
    (tmp_path / "token").write_text("from-the-file\n")
    assert proxy_token(RestSettings(grpc_token_file=str(tmp_path / "token"))) == "from-the-file"
    assert proxy_token(RestSettings(grpc_token="from-env", grpc_token_file=str(tmp_path / "token"))) == "from-env"
    assert proxy_token(RestSettings(grpc_auth="none")) is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({}, "grpc_token is not set"),
        ({"grpc_token_file": "/nonexistent/token"}, "grpc_token_file: cannot read /nonexistent/token"),
        ({"grpc_token": "one,two"}, "grpc_token: 2 tokens are set"),
        ({"grpc_token": "bad\u00e9token"}, "grpc_token: token 1 has characters"),
    ],
)
def test_a_missing_or_bad_token_setting_stops_the_tier_naming_the_key(overrides, named):
    with pytest.raises(SettingsError, match=named) as caught:
        create_app(RestSettings(api_keys="k1", **overrides))
    assert "bad\u00e9token" not in str(caught.value)
