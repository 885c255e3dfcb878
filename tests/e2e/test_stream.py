"""Streaming through every tier on the real model: client -> REST (SSE) -> gRPC stream -> API Gateway
(streaming Lambda) -> Bedrock's response stream -> the local model."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from lambdallm.stack import Stack
from tests.scrape import scrape

pytestmark = [pytest.mark.e2e, pytest.mark.model]
STREAM = {"Accept": "text/event-stream"}


def events_of(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_a_streamed_answer_is_the_unary_answer_in_pieces(model_chain: Stack) -> None:
    body = {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}

    streamed = httpx.post(
        f"{model_chain.rest_url}/query", json=body, headers=STREAM | model_chain.auth_headers, timeout=60
    )
    whole = httpx.post(f"{model_chain.rest_url}/query", json=body, headers=model_chain.auth_headers, timeout=60).json()

    assert streamed.status_code == 200
    events = events_of(streamed)
    kinds = [kind for kind, _ in events]
    assert kinds.count("text") >= 2 and kinds[-1] == "done" and kinds.count("done") == 1
    done = events[-1][1]
    assert "".join(data["text"] for kind, data in events if kind == "text") == done["text"] == whole["text"]
    assert (done["output_tokens"], done["input_tokens"]) == (whole["output_tokens"], whole["input_tokens"])
    assert done["finish_reason"] == whole["finish_reason"]
    assert done["request_id"] == streamed.headers["X-Request-ID"]


LONG = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,", "max_tokens": 3000, "temperature": 0}


def test_a_client_that_hangs_up_frees_the_model_for_the_next_request(one_slot_chain: Stack) -> None:
    chain = one_slot_chain
    with httpx.stream(
        "POST", f"{chain.rest_url}/query", json=LONG, headers=STREAM | chain.auth_headers, timeout=60
    ) as response:
        assert next(response.iter_lines()).startswith("event: text")
    # One slot: the next request waits in the model's queue until the first one's slot is freed. A slot kept by
    # the abandoned generation would hold it there until its 3000 tokens were made (minutes), past this timeout.
    after = httpx.post(
        f"{chain.rest_url}/query",
        json={"prompt": "Hello", "max_tokens": 2},
        headers=STREAM | chain.auth_headers,
        timeout=120,
    )

    assert events_of(after)[-1][0] == "done"
    assert chain.log is not None
    stopped = [
        json.loads(line.split("| ", 1)[1]) for line in chain.log.getvalue().splitlines() if "generation stopped" in line
    ]
    assert len(stopped) == 1 and stopped[0]["output_tokens"] < 1000
    # That line is written when the local Bedrock sees the hang-up, not when the engine frees the slot: count the
    # engine's own steps. One slot makes one token a step; an abandoned generation that kept its slot would have
    # made its 3000 tokens (or run to its end) before the next request could take it.
    scraped = scrape(chain.metrics_urls["local-cloud"])
    steps = sum(
        count
        for (name, labels), count in scraped.items()
        if name == "lambdallm_bedrock_decode_steps_total" and ("kind", "generate") in labels
    )
    assert steps <= stopped[0]["output_tokens"] + 10, (steps, stopped)  # a token or two after the hang-up, and 2


def test_the_deadline_ends_a_stream_with_an_error_event(impatient_chain: Stack) -> None:
    response = httpx.post(
        f"{impatient_chain.rest_url}/query", json=LONG, headers=STREAM | impatient_chain.auth_headers, timeout=60
    )

    assert response.status_code == 200
    events = events_of(response)
    assert events[0][0] == "text"
    kind, problem = events[-1]
    assert kind == "error"
    assert problem["status"] == 504
    assert problem["request_id"] == response.headers["X-Request-ID"]
