"""The Lambda handler, fed the proxy events in tests/events/, against the local Bedrock (real model) via boto3."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lambdallm.local_cloud.server import LocalCloud, function_config, load_functions

EVENTS = Path(__file__).parent.parent / "events"


@pytest.fixture(scope="module")
def handler(model_cloud: LocalCloud) -> Any:
    return load_functions(function_config(model_cloud.settings, model_cloud.bedrock_url))["QueryFunction"]


def run(handler: Any, name: str) -> tuple[int, dict[str, Any]]:
    event = json.loads((EVENTS / name).read_text())
    response = handler(event, SimpleNamespace(aws_request_id="aws-1"))
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.model
def test_query_event_generates_real_text(handler: Any) -> None:
    status, body = run(handler, "query.json")
    assert status == 200
    assert body["request_id"] == "req-query-1"
    assert body["output_tokens"] == 4
    assert body["input_tokens"] > 5  # "The capital of France is" as a user turn of SmolLM2's chat template
    assert body["finish_reason"] == "length"
    assert body["text"].strip()


@pytest.mark.model
def test_base64_event_is_decoded(handler: Any) -> None:
    status, body = run(handler, "query_base64.json")
    assert (status, body["request_id"], body["output_tokens"]) == (200, "aws-1", 2)


@pytest.mark.model
@pytest.mark.parametrize("name", ["query_unknown_field.json", "query_bad_json.json"])
def test_bad_events_are_400(handler: Any, name: str) -> None:
    assert run(handler, name)[0] == 400
