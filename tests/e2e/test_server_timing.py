"""Server-Timing through the whole chain (instant model): every answer says where its time went, whole or
streamed, on /query and /v1, and the parts never add up to more than the total."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from lambdallm.stack import Stack
from llm_wire.timing import parse_timing

pytestmark = [pytest.mark.e2e]
TIERS = ["rest", "proxy", "backend", "model"]
QUERY = {"prompt": "Hello there", "max_tokens": 5}
CHAT = {"model": "amazon.titan-text-premier-v1:0", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}


def tenths(ms: float) -> int:
    return round(ms * 10)  # the figures have one decimal: compare them exactly


def assert_consistent(timing: dict[str, float]) -> None:
    parts = [timing[name] for name in TIERS]
    assert all(ms >= 0 for ms in parts)  # the instant model takes under a millisecond: Bedrock says 0
    assert sum(tenths(ms) for ms in parts) <= tenths(timing["total"])


def post(chain: Stack, path: str, body: dict[str, Any], stream: bool = False) -> httpx.Response:
    headers = chain.auth_headers | ({"Accept": "text/event-stream"} if stream and path == "/query" else {})
    response = httpx.post(f"{chain.rest_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize(
    ("path", "body"),
    [("/query", QUERY), ("/v1/chat/completions", CHAT), ("/v1/completions", CHAT | {"prompt": "Hi", "messages": None})],
)
def test_a_whole_answer_has_each_tier_s_part_of_the_total(
    instant_chain: Stack, path: str, body: dict[str, Any]
) -> None:
    body = {key: value for key, value in body.items() if value is not None}
    timing = parse_timing(post(instant_chain, path, body).headers["Server-Timing"])
    assert list(timing) == ["total", *TIERS]
    assert_consistent(timing)


def test_a_streamed_query_says_its_first_token_in_the_header_and_the_rest_in_its_done_event(
    instant_chain: Stack,
) -> None:
    response = post(instant_chain, "/query", QUERY, stream=True)
    header = parse_timing(response.headers["Server-Timing"])
    done = json.loads(response.text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    timing = done["timing"]
    assert list(header) == ["first_token"] and 0 < header["first_token"] <= timing["total"]
    assert timing["first_token"] == header["first_token"]
    assert_consistent(timing)


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_streamed_chat_completion_has_the_timing_on_its_last_chunk(instant_chain: Stack, include_usage: bool) -> None:
    body = CHAT | {"stream": True} | ({"stream_options": {"include_usage": True}} if include_usage else {})
    response = post(instant_chain, "/v1/chat/completions", body)
    assert "first_token" in parse_timing(response.headers["Server-Timing"])
    chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    assert response.text.rstrip().endswith("data: [DONE]")
    assert [i for i, chunk in enumerate(chunks) if "timing" in chunk] == [len(chunks) - 1]
    assert ("usage" in chunks[-1] and chunks[-1]["choices"] == []) == include_usage
    assert_consistent(chunks[-1]["timing"])


def test_a_refusal_has_a_total_too(instant_chain: Stack) -> None:
    response = httpx.post(f"{instant_chain.rest_url}/query", json=QUERY, timeout=30)  # no API key
    assert response.status_code == 401
    assert list(parse_timing(response.headers["Server-Timing"])) == ["total", "rest"]
