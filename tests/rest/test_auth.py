"""API keys: POST /query needs `Authorization: Bearer <key>`; probes and docs stay open; keys never logged."""

import asyncio
import json
import logging
import os
import subprocess
import sys

import httpx
import pytest

from lambdallm.rest.auth import api_keys
from lambdallm.settings import RestSettings, SettingsError
from tests.fakes.raw_http import build_request, send_raw
from tests.fakes.stack import API_KEY, running_rest
from tests.rest.test_query import VALID, assert_problem


@pytest.fixture
async def anonymous(rest):
    """A client of the REST tier that sends no key."""
    async with httpx.AsyncClient(base_url=rest, timeout=10) as client:
        yield client


async def test_a_request_without_a_key_is_a_401_problem_with_a_bearer_challenge(anonymous, fake):
    response = await anonymous.post("/query", json=VALID)

    assert_problem(response, 401, "No authorization token provided")
    assert response.headers["www-authenticate"] == 'Bearer realm="lambdallm"'
    assert fake.requests == []


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {API_KEY}x", f"Bearer {API_KEY[:-1]}", "Bearer other", f"bearer {API_KEY.upper()}"],
)
async def test_a_wrong_key_is_a_401_that_says_the_token_is_invalid(anonymous, fake, authorization):
    response = await anonymous.post("/query", json=VALID, headers={"Authorization": authorization})

    assert_problem(response, 401, "the API key is not valid")
    assert response.headers["www-authenticate"] == 'Bearer realm="lambdallm", error="invalid_token"'
    assert fake.requests == []


@pytest.mark.parametrize("authorization", [f"Basic {API_KEY}", API_KEY, "Bearer"])
async def test_a_key_not_sent_as_a_bearer_token_is_a_401(anonymous, authorization):
    response = await anonymous.post("/query", json=VALID, headers={"Authorization": authorization})

    assert_problem(response, 401)


async def test_the_key_opens_the_query_and_the_scheme_is_case_insensitive(anonymous):
    response = await anonymous.post("/query", json=VALID, headers={"Authorization": f"bearer {API_KEY}"})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("authorization", [f"Bearer {API_KEY} ", f"Bearer {API_KEY}\t", f"Bearer  {API_KEY} \t "])
async def test_whitespace_around_the_key_is_not_part_of_it(rest, authorization):
    # Written byte for byte: HTTP clients trim what RFC 9110 says a server must not count (5.5).
    port = int(rest.rsplit(":", 1)[1])
    headers = [("Authorization", authorization), ("Content-Type", "application/json")]
    request = build_request("POST", "/query", headers, json.dumps(VALID).encode(), port)

    answer = await asyncio.to_thread(send_raw, port, request)

    assert answer.status == 200, answer.body


@pytest.mark.parametrize("path", ["/health", "/ready", "/openapi.json", "/ui/"])
async def test_probes_and_docs_need_no_key(anonymous, path):
    response = await anonymous.get(path)

    assert response.status_code == 200, response.text


async def test_any_of_several_keys_opens_the_query(proxy):
    async with (
        running_rest(proxy.target, api_keys="first-key,second-key") as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        for key in ("first-key", "second-key"):
            response = await client.post("/query", json=VALID, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
        assert (await client.post("/query", json=VALID, headers={"Authorization": "Bearer third"})).status_code == 401


async def test_keys_never_reach_a_log_line(anonymous, caplog):
    caplog.set_level(logging.DEBUG)
    for key in (API_KEY, "wrong-secret-key"):
        await anonymous.post("/query", json=VALID, headers={"Authorization": f"Bearer {key}"})

    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "401" in logged  # the refusal is logged, without the key it refused
    assert API_KEY not in logged
    assert "wrong-secret-key" not in logged


async def test_auth_none_opens_the_query_to_anyone(proxy):
    async with running_rest(proxy.target, auth="none") as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post("/query", json=VALID)

    assert response.status_code == 200, response.text


def test_keys_come_from_the_setting_and_the_file_separated_by_commas_or_lines(tmp_path):
    secret = tmp_path / "keys"
    secret.write_text("file-key-1\n\nfile-key-2\n")

    keys = api_keys(RestSettings(api_keys="env-key-1,env-key-2", api_keys_file=str(secret)))

    assert keys == (b"env-key-1", b"env-key-2", b"file-key-1", b"file-key-2")


def test_auth_on_without_a_key_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="LAMBDALLM_REST_API_KEYS"):
        api_keys(RestSettings())


def test_an_unreadable_key_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="api_keys_file: cannot read"):
        api_keys(RestSettings(api_keys_file=str(tmp_path / "missing")))


def test_a_key_a_header_cannot_carry_is_refused_without_quoting_it():
    with pytest.raises(SettingsError, match="key 2 has characters") as refused:
        api_keys(RestSettings(api_keys="good-key,bad\u00e9key"))
    assert "bad" not in str(refused.value)


def test_the_rest_tier_refuses_to_start_with_auth_on_and_no_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDALLM_")} | {"LAMBDALLM_REST_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", "rest"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "no API key is set" in result.stderr
    assert "LAMBDALLM_REST_API_KEYS" in result.stderr
    assert "Traceback" not in result.stderr
