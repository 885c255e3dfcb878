"""Both local models through the local API Gateway and the Lambda: GET /models lists them (the default first,
Gemma a base model), a request's `model` reaches the one it names, and any other id is the Lambda's 404."""

from __future__ import annotations

import httpx
import pytest

from lambdallm.local_cloud.server import LocalCloud
from tests.local_cloud.conftest import GEMMA_ID, MODEL_ID

SERVED = [
    {"id": MODEL_ID, "owned_by": "amazon", "instruct": True},
    {"id": GEMMA_ID, "owned_by": "google", "instruct": False},
]


def test_get_models_lists_both_local_models_the_default_first(instant_cloud: LocalCloud) -> None:
    response = httpx.get(instant_cloud.apigw_url + "/models", timeout=30)
    assert (response.status_code, response.json()) == (200, {"models": SERVED})
    assert response.headers["content-type"] == "application/json"


def test_a_request_reaches_the_model_it_names(instant_cloud: LocalCloud) -> None:
    body = {"prompt": "one two", "max_tokens": 5, "model": GEMMA_ID}
    answer = httpx.post(instant_cloud.apigw_url + "/query", json=body, timeout=30).json()
    # Gemma through Converse: the echo's template shows the one user turn that reached it.
    assert (answer["model"], answer["text"]) == (GEMMA_ID, "user: one two assistant:")
    default = httpx.post(instant_cloud.apigw_url + "/query", json=body | {"model": MODEL_ID}, timeout=30).json()
    assert (default["model"], default["text"]) == (MODEL_ID, "one two")  # Titan: InvokeModel's inputText


@pytest.mark.parametrize("path", ["/query", "/query/stream"])
def test_an_unknown_model_is_a_404_naming_the_served_ids(instant_cloud: LocalCloud, path: str) -> None:
    body = {"prompt": "Hi", "max_tokens": 5, "model": "anthropic.claude-v2"}
    response = httpx.post(instant_cloud.apigw_url + path, json=body, timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"model: 'anthropic.claude-v2' is not served here (served: {MODEL_ID}, {GEMMA_ID})"
    )


@pytest.mark.model
def test_the_base_model_continues_a_prompt_through_the_chain_below_the_proxy(model_cloud: LocalCloud) -> None:
    body = {"prompt": "The capital of France is", "max_tokens": 3, "temperature": 0, "model": GEMMA_ID}
    answer = httpx.post(model_cloud.apigw_url + "/query", json=body, timeout=60).json()
    assert answer["model"] == GEMMA_ID
    assert answer["text"].strip()
    assert answer["input_tokens"] <= 6  # the text as it is (and BOS): no chat markup around it
