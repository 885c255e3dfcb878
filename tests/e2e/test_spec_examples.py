"""The spec's examples against the running chain (instant model): every example request is accepted as it stands,
and every error example a client can cause is the problem the tiers really send (tests/contract checks the schemas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e]
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "specs" / "openapi.yaml").read_text())
QUERY = SPEC["paths"]["/query"]["post"]
REQUESTS = QUERY["requestBody"]["content"]["application/json"]["examples"]
ONE_TURN = {"prompt": "Hi", "max_tokens": 5}


def _problem_example(response: str, name: str) -> dict[str, Any]:
    example: dict[str, Any] = SPEC["components"]["responses"][response]["content"]["application/problem+json"][
        "examples"
    ][name]["value"]
    return example


@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_request_example_is_accepted_as_it_stands(instant_chain: Stack, name: str) -> None:
    example = REQUESTS[name]
    accept = example.get("x-accept", "application/json")
    headers = instant_chain.auth_headers | {"Accept": accept}
    answer = httpx.post(f"{instant_chain.rest_url}/query", json=example["value"], headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(accept)
    if accept == "text/event-stream":
        assert "event: done" in answer.text and "event: error" not in answer.text


# How a client causes each error example: (response, example) -> (headers, body).
CAUSES: dict[tuple[str, str], tuple[dict[str, str], bytes]] = {
    ("BadRequest", "bothPromptAndMessages"): (
        {},
        b'{"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}',
    ),
    ("BadRequest", "missingField"): ({}, b'{"prompt": "Hi"}'),
    ("Unauthorized", "wrongKey"): ({"Authorization": "Bearer not-a-key"}, b'{"prompt": "Hi", "max_tokens": 5}'),
    ("NotAcceptable", "notAcceptable"): ({"Accept": "image/png"}, b'{"prompt": "Hi", "max_tokens": 5}'),
    ("UnsupportedMediaType", "compressed"): ({"Content-Encoding": "gzip"}, b'{"prompt": "Hi", "max_tokens": 5}'),
    ("PayloadTooLarge", "tooLarge"): ({}, b'{"prompt": "' + b"a" * 1_000_000 + b'", "max_tokens": 5}'),
}


@pytest.mark.parametrize(("response", "name"), list(CAUSES), ids=lambda v: str(v))
def test_an_error_example_is_what_the_tiers_send(instant_chain: Stack, response: str, name: str) -> None:
    headers, body = CAUSES[response, name]
    sent = instant_chain.auth_headers | {"Content-Type": "application/json"} | headers
    answer = httpx.post(f"{instant_chain.rest_url}/query", content=body, headers=sent, timeout=30)
    example = _problem_example(response, name)
    assert answer.headers["content-type"] == "application/problem+json"
    got = answer.json()
    assert got["request_id"] == answer.headers["X-Request-ID"]
    assert {k: v for k, v in got.items() if k != "request_id"} == {
        k: v for k, v in example.items() if k != "request_id"
    }


def test_swagger_ui_tries_the_first_example_on_this_server_with_the_bearer_key(instant_chain: Stack) -> None:
    """Swagger UI (at /ui/) loads /openapi.json: "Try it out" starts from the first named example (Swagger UI's
    default), sends to the server it was loaded from, and its Authorize button takes the key for the bearer scheme."""
    assert 'url: "/openapi.json"' in httpx.get(f"{instant_chain.rest_url}/ui/", timeout=10).text
    served = httpx.get(f"{instant_chain.rest_url}/openapi.json", timeout=10).json()
    assert [server["url"] for server in served["servers"]] == [""]
    examples = served["paths"]["/query"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    first = next(iter(examples.values()))["value"]
    answer = httpx.post(f"{instant_chain.rest_url}/query", json=first, headers=instant_chain.auth_headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert served["components"]["securitySchemes"]["apiKey"] == SPEC["components"]["securitySchemes"]["apiKey"]
    assert served["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
