"""Fixtures for the Lambda function's tests: proxy events from tests/events/ and a stubbed Bedrock client."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

EVENTS = Path(__file__).parent.parent / "events"

# The handler builds its client at import: give it dummy credentials and an endpoint that is not AWS, so no
# test can ever reach the real Bedrock (the stubs answer before any request is sent).
for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:9",
}.items():
    os.environ.setdefault(key, value)
os.environ.pop("AWS_SESSION_TOKEN", None)


@dataclass
class FakeContext:
    """The parts of the Lambda context object the handler reads."""

    aws_request_id: str = "aws-req-0001"
    function_name: str = "QueryFunction"


def load_event(name: str, body: Any = None) -> dict[str, Any]:
    """A proxy event from tests/events/, optionally with a replaced JSON body."""
    event = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    if body is not None:
        event["body"], event["isBase64Encoded"] = json.dumps(body), False
    return event


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    """`event(name, body=None)`: a proxy event from tests/events/ (the folder is not importable: `lambda`)."""
    return load_event


@pytest.fixture
def context() -> FakeContext:
    """A Lambda context with a fixed aws_request_id."""
    return FakeContext()


@pytest.fixture
def stubbed() -> Iterator[Stubber]:
    """The handler's own Bedrock client, stubbed; every queued answer must be consumed."""
    from llm_lambda import handler

    with Stubber(handler.bedrock) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
