"""The proxy signs its backend requests (SigV4) and the local API Gateway checks them, as in AWS with IAM."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest

from lambdallm.stack import Ports, Stack

pytestmark = [pytest.mark.e2e]
IAM = {"LAMBDALLM_LOCAL_CLOUD_APIGW_AUTH": "iam", "LAMBDALLM_PROXY_BACKEND_AUTH": "iam"}
BODY = {"prompt": "alpha beta gamma", "max_tokens": 2}


def _credentials(secret: str) -> dict[str, str]:
    """The standard chain's first link, the environment, with the local cloud's key id and `secret`."""
    return {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": secret, "AWS_CONFIG_FILE": "/dev/null"}


@pytest.fixture(scope="module")
def signed_chain() -> Iterator[Stack]:
    with Stack(Ports.any(), engine="instant", log=io.StringIO(), extra_env=IAM | _credentials("local")) as stack:
        yield stack


def test_a_signed_query_crosses_the_chain(signed_chain: Stack) -> None:
    answer = httpx.post(f"{signed_chain.rest_url}/query", json=BODY, headers=signed_chain.auth_headers, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "alpha beta"


def test_a_signed_stream_crosses_the_chain(signed_chain: Stack) -> None:
    headers = signed_chain.auth_headers | {"Accept": "text/event-stream"}
    answer = httpx.post(f"{signed_chain.rest_url}/query", json=BODY, headers=headers, timeout=30)

    assert answer.status_code == 200, answer.text
    events = [line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")]
    assert events[-1] == "done"
    done = answer.text.rsplit("data: ", 1)[1]
    assert json.loads(done)["text"] == "alpha beta"


def test_the_model_list_is_signed_like_a_query(signed_chain: Stack) -> None:
    answer = httpx.get(f"{signed_chain.rest_url}/models", headers=signed_chain.auth_headers, timeout=30)
    unsigned = httpx.get(f"http://127.0.0.1:{signed_chain.ports.apigw}/models", timeout=30)

    assert answer.status_code == 200, answer.text
    assert [model["id"] for model in answer.json()["models"]] == [
        "amazon.titan-text-premier-v1:0",
        "google.gemma-3-270m",
    ]
    assert unsigned.status_code == 403


def test_the_gateway_refuses_an_unsigned_request_in_the_same_chain(signed_chain: Stack) -> None:
    answer = httpx.post(f"http://127.0.0.1:{signed_chain.ports.apigw}/query", json=BODY, timeout=30)

    assert (answer.status_code, answer.json()) == (403, {"message": "Missing Authentication Token"})


def test_a_proxy_with_the_wrong_secret_is_not_ready_and_its_queries_fail_with_the_reason() -> None:
    stack = Stack(Ports.any(), engine="instant", log=io.StringIO(), extra_env=IAM | _credentials("wrong"))
    try:
        stack.start()
        stack.wait_ready(path="/health", timeout=60)
        answer = httpx.post(f"{stack.rest_url}/query", json=BODY, headers=stack.auth_headers, timeout=30)
        ready = httpx.get(f"{stack.rest_url}/ready", timeout=30)
    finally:
        stack.stop()

    assert answer.status_code == 502, answer.text
    assert answer.json()["detail"].startswith("backend answered HTTP 403: The request signature we calculated")
    assert ready.status_code == 503
