"""POST /query/stream on the local API Gateway: the streaming Lambda handler, through boto3's response stream,
to the local Bedrock; bytes relayed as they are made, failures, and a client that hangs up."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import botocore.session
import httpx
import pytest

from lambdallm.local_cloud.bedrock_errors import BedrockError
from lambdallm.local_cloud.engines import Cancelled, Completion, Emit, GenerationRequest, InstantEngine
from lambdallm.local_cloud.server import LocalCloud, running_local_cloud
from llm_lambda.bedrock_errors import CLIENT_ERRORS
from tests.local_cloud.conftest import GATE_TIMEOUT_S, GatedEngine, settings


def stream_lines(cloud: LocalCloud, body: dict[str, Any], **headers: str) -> tuple[httpx.Response, list[Any]]:
    response = httpx.post(f"{cloud.apigw_url}/query/stream", json=body, headers=headers, timeout=60)
    if response.headers["content-type"] != "application/x-ndjson":
        return response, []
    return response, [json.loads(line) for line in response.text.splitlines()]


def test_text_events_then_done_with_counts(instant_cloud: LocalCloud) -> None:
    response, events = stream_lines(
        instant_cloud, {"prompt": "alpha beta gamma", "max_tokens": 2}, **{"X-Request-ID": "s1"}
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "s1"
    timing = events[-1].pop("timing")  # the function's time, the model's latency (from Bedrock's metadata) in it
    assert set(timing) == {"backend", "model"} and 0 <= timing["model"] <= timing["backend"]
    assert events == [
        {"type": "text", "text": "alpha"},
        {"type": "text", "text": " beta"},
        {
            "type": "done",
            "text": "",
            "model": "amazon.titan-text-premier-v1:0",
            "input_tokens": 3,
            "output_tokens": 2,
            "finish_reason": "length",
            "request_id": "s1",
        },
    ]


def test_an_accept_without_ndjson_is_a_406_before_any_stream(instant_cloud: LocalCloud) -> None:
    refused, _ = stream_lines(instant_cloud, {"prompt": "hi", "max_tokens": 2}, Accept="text/event-stream")
    streamed, events = stream_lines(instant_cloud, {"prompt": "hi", "max_tokens": 2}, Accept="application/x-ndjson")

    assert (refused.status_code, refused.headers["content-type"]) == (406, "application/problem+json")
    assert refused.json()["detail"] == "accept: must allow application/x-ndjson"
    assert (streamed.status_code, events[-1]["type"]) == (200, "done")


def test_bad_input_is_a_problem_before_any_stream(instant_cloud: LocalCloud) -> None:
    response, _ = stream_lines(instant_cloud, {"prompt": "hi", "max_tokens": 0})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "max_tokens" in response.json()["detail"]


class TrickleEngine(GatedEngine):
    """A queued model that emits one word, then more every few milliseconds until `gate` opens or its caller
    goes; it records whether it was cancelled, and can fail after the first word."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(slots=1)
        self.cancelled_seen = threading.Event()
        self.fail = fail

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        assert emit is not None
        emit("first", 1)
        if self.fail:
            raise RuntimeError("the model broke")
        count = 1
        while not self.gate.wait(0.02):
            if cancelled.is_set():
                self.cancelled_seen.set()
                raise Cancelled
            count += 1
            emit(" more", count)
            if count * 0.02 > GATE_TIMEOUT_S:
                self.timed_out = True
                raise AssertionError(f"the test did not open the gate within {GATE_TIMEOUT_S} s")
        return Completion("first", 1, count, "FINISH")


@pytest.fixture
def trickle() -> Iterator[tuple[LocalCloud, TrickleEngine]]:
    engine = TrickleEngine()
    with running_local_cloud(settings(), engine=engine) as cloud:
        try:
            yield cloud, engine
        finally:
            engine.gate.set()
    assert not engine.timed_out, "a generation waited for a gate the test never opened"


def test_the_first_text_arrives_while_the_model_is_still_generating(trickle: tuple[LocalCloud, TrickleEngine]) -> None:
    cloud, engine = trickle
    with httpx.stream(
        "POST", f"{cloud.apigw_url}/query/stream", json={"prompt": "p", "max_tokens": 5}, timeout=30
    ) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))
        assert not engine.gate.is_set()  # the model has not finished: the line was relayed as it was made
        engine.gate.set()
        last = json.loads(list(lines)[-1])

    assert first == {"type": "text", "text": "first"}
    assert last["type"] == "done"


def test_a_client_that_hangs_up_stops_the_generation(trickle: tuple[LocalCloud, TrickleEngine]) -> None:
    cloud, engine = trickle
    with httpx.stream(
        "POST", f"{cloud.apigw_url}/query/stream", json={"prompt": "p", "max_tokens": 5}, timeout=30
    ) as response:
        assert json.loads(next(response.iter_lines()))["type"] == "text"

    assert engine.cancelled_seen.wait(10), "the model kept generating for a client that left"


def test_a_model_failure_after_the_first_text_is_the_streams_error_event() -> None:
    engine = TrickleEngine(fail=True)
    with running_local_cloud(settings(), engine=engine) as cloud:
        response, events = stream_lines(cloud, {"prompt": "p", "max_tokens": 5})

    assert response.status_code == 200
    assert events[0] == {"type": "text", "text": "first"}
    assert events[-1]["type"] == "error"
    assert events[-1]["status"] == 502
    assert "Traceback" not in response.text


def stream_exceptions(operation: str, member: str) -> list[str]:
    """The exceptions a Bedrock response stream can carry (its union's members, as botocore models them), in
    their usual spelling: an exception the model does not list cannot come mid-stream (botocore drops its name)."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    names = model.operation_model(operation).output_shape.members[member].members
    return [name[0].upper() + name[1:] for name in names if name.endswith("Exception")]


# (operation's request shape, exception) for each streaming operation and each exception its stream carries.
STREAM_FAILURES = [("prompt", name) for name in stream_exceptions("InvokeModelWithResponseStream", "body")] + [
    ("messages", name) for name in stream_exceptions("ConverseStream", "stream")
]


class ThrowingEngine(InstantEngine):
    """Emits one word, then fails as Bedrock does mid-stream, with the exception its prompt names."""

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        assert emit is not None
        emit("first", 1)
        name = next(name for _, name in STREAM_FAILURES if name in request.prompt)
        raise BedrockError(400, name, f"{name} mid-stream")


@pytest.fixture(scope="module")
def throwing_cloud() -> Iterator[LocalCloud]:
    with running_local_cloud(settings(), engine=ThrowingEngine()) as cloud:
        yield cloud


@pytest.mark.parametrize(("shape", "name"), STREAM_FAILURES)
def test_an_exception_mid_stream_reaches_the_caller_as_its_status(
    throwing_cloud: LocalCloud, shape: str, name: str
) -> None:
    # Bedrock names a stream's exceptions in lower camel case (throttlingException): the same table must apply.
    # A prompt goes through InvokeModelWithResponseStream, a conversation through ConverseStream.
    body: dict[str, Any] = {"max_tokens": 5}
    body |= {"prompt": name} if shape == "prompt" else {"messages": [{"role": "user", "content": name}]}
    status, detail = CLIENT_ERRORS.get(name, (502, "the model call failed"))

    response, events = stream_lines(throwing_cloud, body)

    assert response.status_code == 200
    assert events[0] == {"type": "text", "text": "first"}
    assert events[-1]["type"] == "error"
    assert (events[-1]["status"], events[-1]["detail"]) == (
        status,
        detail or f"the model rejected the request: {name} mid-stream",
    )
