"""Model choice through the whole chain on the real models: bedrest and curl's view of /query's `model`,
GET /models and `bedrest models`, through REST -> gRPC (ListModels) -> API Gateway -> Lambda -> local Bedrock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.model]
DEFAULT, GEMMA = "amazon.titan-text-premier-v1:0", "google.gemma-3-270m"


def test_a_prompt_for_gemma_is_continued_by_gemma(model_chain: Stack) -> None:
    body = {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0, "model": GEMMA}
    answer = httpx.post(f"{model_chain.rest_url}/query", json=body, headers=model_chain.auth_headers, timeout=60)

    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == GEMMA
    assert answer.json()["text"].strip()
    assert answer.json()["input_tokens"] <= 6  # the text as it is, no chat markup: Gemma is a base model


def test_a_streamed_answer_names_the_chosen_model(model_chain: Stack) -> None:
    body = {"prompt": "Once upon a time", "max_tokens": 3, "temperature": 0, "model": GEMMA, "continuation": True}
    headers = model_chain.auth_headers | {"Accept": "text/event-stream"}
    answer = httpx.post(f"{model_chain.rest_url}/query", json=body, headers=headers, timeout=60)

    assert answer.status_code == 200, answer.text
    assert answer.text.splitlines()[-3] == "event: done"
    assert f'"model": "{GEMMA}"' in answer.text.splitlines()[-2]


def test_an_unknown_model_is_a_404_naming_the_served_ids(model_chain: Stack) -> None:
    body = {"prompt": "Hi", "max_tokens": 4, "model": "anthropic.claude-v2"}
    answer = httpx.post(f"{model_chain.rest_url}/query", json=body, headers=model_chain.auth_headers, timeout=60)

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == f"model: 'anthropic.claude-v2' is not served here (served: {DEFAULT}, {GEMMA})"


def test_get_models_lists_both_models_through_every_tier(model_chain: Stack) -> None:
    answer = httpx.get(f"{model_chain.rest_url}/models", headers=model_chain.auth_headers, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "models": [
            {"id": DEFAULT, "owned_by": "amazon", "instruct": True},
            {"id": GEMMA, "owned_by": "google", "instruct": False},
        ]
    }


def test_bedrest_models_lists_both_and_bedrest_model_asks_gemma(model_chain: Stack) -> None:
    bedrest = Path(sys.executable).with_name("bedrest")
    env = os.environ | {"BEDREST_API_KEY": str(model_chain.api_key)}
    port = str(model_chain.ports.rest)

    listed = subprocess.run(
        [str(bedrest), "--port", port, "models"], capture_output=True, text=True, timeout=60, env=env
    )
    asked = subprocess.run(
        [str(bedrest), "--port", port, "--model", GEMMA, "--raw", "--max-tokens", "3", "--no-stream", "active"],
        input="The sky is\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:3] for line in listed.stdout.splitlines()] == [
        [DEFAULT, "amazon", "instruct"],
        [GEMMA, "google", "base"],
    ]
    assert asked.returncode == 0, asked.stderr
    assert "output tokens" in asked.stdout
