"""Fixtures for the Lambda function's tests: proxy events from tests/events/ and a stubbed Bedrock client."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function

EVENTS = Path(__file__).parent.parent / "events"

# Dummy credentials and an endpoint that is not AWS, so no test can ever reach the real Bedrock (the stubs answer
# before any request is sent).
TEST_CONFIG = FunctionConfig(endpoint_url="http://127.0.0.1:9", access_key_id="testing", secret_access_key="testing")


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


@pytest.fixture(scope="session")
def function() -> Function:
    """The function's handlers as configured by TEST_CONFIG: one client for every test, as in one environment."""
    return Function(TEST_CONFIG)


@pytest.fixture
def stubbed(function: Function) -> Iterator[Stubber]:
    """The function's own Bedrock client, stubbed; every queued answer must be consumed."""
    with Stubber(function.bedrock) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
