"""Conversations in the Lambda: Converse with the turns, `system` for a model without system prompts, the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_lambda import bedrock
from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function
from llm_wire.errors import BackendError
from llm_wire.request import QueryRequest, Turn
from llm_wire.timing import parse_timing

TURNS = [
    {"role": "user", "content": [{"text": "Answer in one short sentence.\n\nMy name is Ada."}]},
    {"role": "assistant", "content": [{"text": "Hello Ada!"}]},
    {"role": "user", "content": [{"text": "What is my name?"}]},
]


def converse_answer(text: str = "Your name is Ada.", reason: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": reason,
        "usage": {"inputTokens": 40, "outputTokens": 6, "totalTokens": 46},
        "metrics": {"latencyMs": 120},
    }


@pytest.fixture
def call(function: Function) -> Callable[[dict[str, Any], Any], tuple[int, dict[str, Any]]]:
    def run(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
        response = function.lambda_handler(event, context)
        return response["statusCode"], json.loads(response["body"])

    return run


def test_a_conversation_goes_to_converse_with_every_turn(call: Any, event: Any, context: Any, stubbed: Stubber) -> None:
    expected = {
        "modelId": FunctionConfig.model_id,
        "messages": TURNS,
        "inferenceConfig": {"maxTokens": 12, "temperature": 0.0},
    }
    stubbed.add_response("converse", converse_answer(), expected)
    status, body = call(event("query_conversation.json"), context)
    assert status == 200
    assert body == {
        "text": "Your name is Ada.",
        "model": "amazon.titan-text-premier-v1:0",
        "input_tokens": 40,
        "output_tokens": 6,
        "finish_reason": "stop",
        "request_id": "req-chat-1",
    }


def test_converse_s_latency_is_the_answer_s_model_time(
    function: Function, event: Any, context: Any, stubbed: Stubber
) -> None:
    stubbed.add_response("converse", converse_answer())  # metrics.latencyMs: 120
    response = function.lambda_handler(event("query_conversation.json"), context)
    timing = parse_timing(response["headers"]["Server-Timing"])
    assert list(timing) == ["backend", "model"] and timing["model"] == 120.0


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("250", 250.0),
        (0, 0.0),
        (12.5, 12.5),
        (-1, None),
        (float("inf"), None),
        ("nan", None),
        ("soon", None),
        (None, None),
    ],
)
def test_bedrock_s_latency_is_read_only_as_a_finite_non_negative_number(value: Any, ms: float | None) -> None:
    assert bedrock.latency(value) == ms


def test_system_goes_to_system_for_a_model_that_takes_one() -> None:
    request = QueryRequest(None, 5, messages=(Turn("user", "Hi"),), system="Be brief.")
    arguments = bedrock.converse_request("meta.llama3-8b-instruct-v1:0", request)
    assert arguments["system"] == [{"text": "Be brief."}]
    assert arguments["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]
    titan = bedrock.converse_request("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1", request)
    assert "system" not in titan
    assert titan["messages"] == [{"role": "user", "content": [{"text": "Be brief.\n\nHi"}]}]


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.titan-text-premier-v1:0",
        "us.amazon.titan-text-premier-v1:0",  # a cross-region inference profile
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/a1b2c3d4e5f6",
    ],
)
def test_a_titan_model_gets_no_system_field_however_it_is_named(model_id: str) -> None:
    request = QueryRequest(None, 5, messages=(Turn("user", "Hi"),), system="Be brief.")
    arguments = bedrock.converse_request(model_id, request)
    assert "system" not in arguments
    assert arguments["messages"] == [{"role": "user", "content": [{"text": "Be brief.\n\nHi"}]}]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(
    call: Any, event: Any, context: Any, stubbed: Stubber, reason: str, finish: str
) -> None:
    stubbed.add_response("converse", converse_answer(reason=reason))
    assert call(event("query_conversation.json"), context)[1]["finish_reason"] == finish


def test_an_answer_that_stops_for_a_tool_without_calling_one_is_a_bad_gateway(
    call: Any, event: Any, context: Any, stubbed: Stubber
) -> None:
    stubbed.add_response("converse", converse_answer(reason="tool_use"))
    status, body = call(event("query_conversation.json"), context)
    assert (status, body["detail"]) == (502, "the model returned a malformed answer")


@pytest.mark.parametrize(
    "answer",
    [
        {**converse_answer(), "output": {}},
        {**converse_answer(), "output": {"message": {"role": "assistant", "content": [{"text": 5}]}}},
        {**converse_answer(), "usage": {"inputTokens": -1, "outputTokens": 1, "totalTokens": 0}},
        {key: value for key, value in converse_answer().items() if key != "stopReason"},
    ],
)
def test_a_malformed_converse_answer_is_a_bad_gateway(answer: dict[str, Any]) -> None:
    with pytest.raises(BackendError) as caught:
        bedrock.parse_converse(answer)
    assert (caught.value.status, caught.value.detail) == (502, "the model returned a malformed answer")


def test_converse_errors_go_through_the_same_table(call: Any, event: Any, context: Any, stubbed: Stubber) -> None:
    stubbed.add_client_error("converse", "ThrottlingException", "slow down", 429)
    status, body = call(event("query_conversation.json"), context)
    assert (status, body["detail"]) == (429, "the model is busy; retry later")


def test_converse_stream_yields_text_then_the_generation(stubbed: Stubber) -> None:
    class Events:
        def __iter__(self) -> Any:
            yield {"messageStart": {"role": "assistant"}}
            yield {"contentBlockDelta": {"delta": {"text": "Your name"}, "contentBlockIndex": 0}}
            yield {"contentBlockDelta": {"delta": {"text": " is Ada."}, "contentBlockIndex": 0}}
            yield {"contentBlockStop": {"contentBlockIndex": 0}}
            yield {"messageStop": {"stopReason": "max_tokens"}}
            yield {"metadata": {"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}, "metrics": {}}}

    class Client:
        def converse_stream(self, **arguments: Any) -> dict[str, Any]:
            assert arguments["messages"][-1] == {"role": "user", "content": [{"text": "And mine?"}]}
            return {"stream": Events()}

    request = QueryRequest(None, 4, messages=(Turn("user", "And mine?"),))
    *pieces, final = bedrock.converse_stream(Client(), "amazon.titan-text-premier-v1:0", request)
    assert pieces == ["Your name", " is Ada."]
    assert final == bedrock.Generation("", 9, 4, "length")  # the text came in the pieces


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": 4}, "prompt, messages"),
        ({"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}, "prompt, messages"),
        ({"prompt": "Hi", "system": "Be brief.", "max_tokens": 4}, "system"),
        ({"messages": [], "max_tokens": 4}, "messages"),
        ({"messages": [{"role": "assistant", "content": "Hi"}], "max_tokens": 4}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "max_tokens": 4},
            "messages[1].role",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "max_tokens": 4},
            "last turn",
        ),
        ({"messages": [{"role": "user", "content": ""}], "max_tokens": 4}, "messages[0].content"),
        ({"messages": [{"role": "user"}], "max_tokens": 4}, "messages[0]"),
        ({"messages": [{"role": "user", "content": "x" * 30000}], "system": "y" * 2001, "max_tokens": 4}, "together"),
        ({"messages": [{"role": "user", "content": "Hi"}], "system": "", "max_tokens": 4}, "system"),
    ],
)
def test_bad_conversations_are_400_naming_the_field(
    call: Any, event: Any, context: Any, stubbed: Stubber, body: dict[str, Any], field: str
) -> None:
    status, problem = call(event("query.json", body), context)
    assert status == 400
    assert field in problem["detail"]


@pytest.mark.parametrize("prompt", ["Hi", None])
def test_closing_a_stream_before_its_first_piece_closes_bedrocks_connection(prompt: str | None) -> None:
    """A caller that goes away before the first piece (issue 26): closing a generator that never started runs
    none of its code, so the event stream's HTTP connection stayed open."""

    class Events:
        closed = False

        def __iter__(self) -> Any:
            yield from ()

        def close(self) -> None:
            self.closed = True

    events = Events()

    class Client:
        def invoke_model_with_response_stream(self, **arguments: Any) -> dict[str, Any]:
            return {"body": events}

        def converse_stream(self, **arguments: Any) -> dict[str, Any]:
            return {"stream": events}

    messages = () if prompt else (Turn("user", "Hi"),)
    request = QueryRequest(prompt, 4, messages=messages)
    bedrock.generate_stream(Client(), "amazon.titan-text-premier-v1:0", request).close()
    assert events.closed


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (converse_answer(reason="tool_use"), "stopReason 'tool_use' with 0 toolUse blocks"),
        (
            {**converse_answer(), "usage": {"inputTokens": 3, "outputTokens": -1, "totalTokens": 2}},
            "token counts are not non-negative integers",
        ),
    ],
)
def test_a_malformed_converse_answer_says_why_in_the_log(answer: dict[str, Any], why: str) -> None:
    """The caller reads only "malformed answer"; the operator's log line (its traceback, exc_info) says why."""
    with pytest.raises(BackendError) as caught:
        bedrock.parse_converse(answer)
    assert str(caught.value.__cause__) == why


def test_a_converse_text_that_is_not_a_string_says_its_type_in_the_log() -> None:
    with pytest.raises(BackendError) as caught:
        bedrock.converse_generation(5, "end_turn", {"inputTokens": 1, "outputTokens": 1})
    assert str(caught.value.__cause__) == "text int, stopReason 'end_turn'"


def test_an_empty_converse_answer_with_a_real_reason_is_an_answer() -> None:
    answer = {**converse_answer(text=""), "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}}
    assert bedrock.parse_converse(answer) == bedrock.Generation("", 0, 0, "stop")


def test_the_text_blocks_of_a_converse_answer_are_joined_as_they_are() -> None:
    content = [{"text": "Your name "}, {"reasoningContent": {"reasoningText": {"text": "hm"}}}, {"text": "is Ada."}]
    answer = {**converse_answer(), "output": {"message": {"role": "assistant", "content": content}}}
    assert bedrock.parse_converse(answer).text == "Your name is Ada."


class ConverseEvents:
    """A ConverseStream event stream made by the test; records that it was closed."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.events, self.closed = events, False

    def __iter__(self) -> Any:
        return iter(self.events)

    def close(self) -> None:
        self.closed = True


class StreamingClient:
    """A Bedrock client whose ConverseStream answers with `events`."""

    def __init__(self, events: ConverseEvents) -> None:
        self.events = events

    def converse_stream(self, **arguments: Any) -> dict[str, Any]:
        return {"stream": self.events}


END = (
    {"messageStop": {"stopReason": "end_turn"}},
    {"metadata": {"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {}}},
)
CONVERSATION = QueryRequest(None, 4, messages=(Turn("user", "Hi"),))


def test_a_converse_stream_read_to_its_end_closes_bedrocks_connection() -> None:
    """Without the caller closing it: the generator closes the stream however it ends."""
    events = ConverseEvents({"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}}, *END)
    pieces = bedrock.converse_stream(StreamingClient(events), "m", CONVERSATION)
    assert next(pieces) == "Hi"
    assert list(pieces) == [bedrock.Generation("", 9, 2, "stop")]
    assert events.closed


def test_a_converse_stream_skips_deltas_without_text() -> None:
    events = ConverseEvents(
        {"contentBlockDelta": {"contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "hm"}}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 1}},
        *END,
    )
    pieces = list(bedrock.converse_stream(StreamingClient(events), "m", CONVERSATION))
    assert pieces == ["Hi", bedrock.Generation("", 9, 2, "stop")]


def test_a_converse_stream_without_message_stop_is_a_bad_gateway_that_says_why() -> None:
    events = ConverseEvents({"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}}, END[1])
    pieces = bedrock.converse_stream(StreamingClient(events), "m", CONVERSATION)
    assert next(pieces) == "Hi"
    with pytest.raises(BackendError) as caught:
        next(pieces)
    assert (caught.value.status, caught.value.detail) == (502, "the model returned a malformed answer")
    assert str(caught.value.__cause__) == "text str, stopReason None"
