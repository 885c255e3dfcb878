"""The streaming Lambda handler against Bedrock streams made by the test: ConverseStream, Titan streams that
break their contract, and the prompt in the log only when LOG_PROMPTS is on."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llm_lambda import bedrock as bedrock_module
from llm_lambda import handler
from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function
from llm_wire.errors import BackendError
from llm_wire.jsonlog import JsonFormatter
from llm_wire.request import QueryRequest


class FakeStream:
    """A Bedrock event stream of already parsed events, as boto3 yields them; records that it was closed."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def close(self) -> None:
        self.closed = True


def titan_chunk(body: Any) -> dict[str, Any]:
    return {"chunk": {"bytes": json.dumps(body).encode()}}


class FakeBedrock:
    """A Bedrock client answering each streaming call with the FakeStream in `calls["stream"]`, and recording the
    arguments in `calls`."""

    def __init__(self, calls: dict[str, Any]) -> None:
        self.calls = calls

    def converse_stream(self, **arguments: Any) -> dict[str, Any]:
        self.calls["converse_stream"] = arguments
        return {"stream": self.calls["stream"]}

    def invoke_model_with_response_stream(self, **arguments: Any) -> dict[str, Any]:
        self.calls["invoke"] = arguments
        return {"body": self.calls["stream"]}


def stream(
    bedrock: dict[str, Any], event: dict[str, Any], context: Any, log_prompts: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The metadata and the NDJSON lines `stream_handler` writes, over a FakeBedrock recording into `bedrock`."""
    function = Function(FunctionConfig(log_prompts=log_prompts), bedrock=FakeBedrock(bedrock))
    written = b"".join(function.stream_handler(event, context))
    metadata, _, body = written.partition(handler.STREAM_SEPARATOR)
    return json.loads(metadata), [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def bedrock() -> dict[str, Any]:
    """What the test's FakeBedrock answers with (`stream`) and the arguments of each call it had."""
    return {}


ADA = [  # ConverseStream's events for a two-piece answer
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Your name"}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": ""}, "contentBlockIndex": 0}},  # nothing to pass on
    {"contentBlockDelta": {"delta": {"text": " is Ada."}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "end_turn"}},
    {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 4, "totalTokens": 34}, "metrics": {"latencyMs": 42}}},
]


def test_a_conversation_streams_through_converse_stream(bedrock: dict[str, Any], event: Any, context: Any) -> None:
    bedrock["stream"] = FakeStream(ADA)

    metadata, lines = stream(bedrock, event("query_conversation.json"), context)
    timing = lines[-1].pop("timing")  # Bedrock's latency, within the function's own time
    assert timing["model"] == 42 and set(timing) == {"backend", "model"}

    assert metadata == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/x-ndjson", "X-Request-ID": "req-chat-1"},
    }
    assert lines == [
        {"type": "text", "text": "Your name"},
        {"type": "text", "text": " is Ada."},
        {
            "type": "done",
            "text": "",
            "model": FunctionConfig.model_id,
            "input_tokens": 30,
            "output_tokens": 4,
            "finish_reason": "stop",
            "request_id": "req-chat-1",
        },
    ]
    arguments = bedrock["converse_stream"]
    assert [turn["role"] for turn in arguments["messages"]] == ["user", "assistant", "user"]
    assert arguments["inferenceConfig"] == {"maxTokens": 12, "temperature": 0}
    assert bedrock["stream"].closed


NO_REASON = "the model's stream ended without a completion reason"
MALFORMED = "the model streamed a malformed chunk"


@pytest.mark.parametrize(
    ("events", "detail"),
    [
        ([titan_chunk({"outputText": "Par"}), titan_chunk({"outputText": "is"})], NO_REASON),
        ([titan_chunk({"outputText": "Paris", "completionReason": "MYSTERY"})], NO_REASON),
        ([titan_chunk({"outputText": "Par"}), {"chunk": {"bytes": b"not json"}}], MALFORMED),
        ([titan_chunk({"outputText": "Par"}), titan_chunk(["a", "list"])], MALFORMED),
        ([titan_chunk({"outputText": "Par"}), titan_chunk({"outputText": 7})], MALFORMED),
        ([titan_chunk({"outputText": "Par"}), {"somethingElse": {}}], MALFORMED),
    ],
    ids=["no reason", "unknown reason", "not JSON", "not an object", "text not a string", "no chunk"],
)
def test_a_titan_stream_that_breaks_its_contract_ends_with_a_502_error_line(
    bedrock: dict[str, Any], event: Any, context: Any, events: list[dict[str, Any]], detail: str
) -> None:
    bedrock["stream"] = FakeStream(events)

    metadata, lines = stream(bedrock, event("query.json"), context)

    assert metadata["statusCode"] == 200
    assert lines[0]["type"] == "text"
    assert lines[-1]["type"] == "error"
    assert lines[-1]["status"] == 502
    assert lines[-1]["detail"] == detail
    assert [line["type"] for line in lines].count("done") == 0
    assert bedrock["stream"].closed


def test_a_titan_stream_with_its_reason_and_counts_is_done(bedrock: dict[str, Any], event: Any, context: Any) -> None:
    bedrock["stream"] = FakeStream(
        [
            titan_chunk({"outputText": " Paris", "index": 0, "inputTextTokenCount": 6}),
            titan_chunk(
                {
                    "outputText": ".",
                    "index": 0,
                    "totalOutputTextTokenCount": 2,
                    "completionReason": "FINISH",
                    "amazon-bedrock-invocationMetrics": {"inputTokenCount": 6, "outputTokenCount": 2},
                }
            ),
        ]
    )

    _, lines = stream(bedrock, event("query.json"), context)

    assert [line.get("text") for line in lines[:-1]] == [" Paris", "."]
    assert (lines[-1]["type"], lines[-1]["input_tokens"], lines[-1]["output_tokens"]) == ("done", 6, 2)
    assert lines[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("chunks", "counts"),
    [
        (
            [
                {"outputText": " Paris", "inputTextTokenCount": 6, "totalOutputTextTokenCount": 1},
                {"outputText": "."},
                {"outputText": "", "totalOutputTextTokenCount": 2, "completionReason": "FINISH"},
            ],
            (6, 2),
        ),
        (
            [
                {"outputText": " Paris"},
                {
                    "outputText": ".",
                    "completionReason": "FINISH",
                    "amazon-bedrock-invocationMetrics": {"inputTokenCount": 6, "outputTokenCount": 2},
                },
            ],
            (6, 2),
        ),
        ([{"outputText": " Paris."}, {"outputText": "", "completionReason": "FINISH"}], (0, 0)),
    ],
    ids=["running counts", "invocation metrics", "no counts"],
)
def test_a_titan_stream_counts_its_tokens_from_whichever_counts_it_carries(
    bedrock: dict[str, Any], event: Any, context: Any, chunks: list[dict[str, Any]], counts: tuple[int, int]
) -> None:
    """Titan's chunks carry running counts (the input's once, the output's so far), its last one Bedrock's
    invocation metrics, or neither: the done line has the last of each, and 0 for a count never given."""
    bedrock["stream"] = FakeStream([titan_chunk(chunk) for chunk in chunks])

    _, lines = stream(bedrock, event("query.json"), context)

    assert "".join(line.get("text", "") for line in lines) == " Paris."
    assert (lines[-1]["type"], lines[-1]["input_tokens"], lines[-1]["output_tokens"]) == ("done", *counts)


def test_a_titan_stream_asks_bedrock_for_json_with_the_titan_body(
    bedrock: dict[str, Any], event: Any, context: Any
) -> None:
    bedrock["stream"] = FakeStream([titan_chunk({"outputText": "x", "completionReason": "FINISH"})])
    stream(bedrock, event("query.json"), context)
    assert bedrock["invoke"] == {
        "modelId": FunctionConfig.model_id,
        "body": json.dumps(
            {"inputText": "The capital of France is", "textGenerationConfig": {"maxTokenCount": 4, "temperature": 0.0}}
        ),
        "contentType": "application/json",
        "accept": "application/json",
    }


def test_a_malformed_titan_chunk_says_why_in_the_log() -> None:
    """The caller reads only "malformed chunk"; the operator's log line (its traceback, exc_info) says why."""
    events = FakeStream([titan_chunk(["a", "list"])])
    pieces = bedrock_module.invoke_stream(FakeBedrock({"stream": events}), "m", QueryRequest("Hi", 4))
    with pytest.raises(BackendError) as caught:
        next(pieces)
    assert str(caught.value.__cause__) == "not a Titan chunk"


def test_a_titan_stream_read_to_its_end_closes_bedrocks_connection() -> None:
    """Without the caller closing it: the generator closes the stream however it ends."""
    events = FakeStream([titan_chunk({"outputText": "Hi", "completionReason": "FINISH"})])
    pieces = bedrock_module.invoke_stream(FakeBedrock({"stream": events}), "m", QueryRequest("Hi", 4))
    assert next(pieces) == "Hi"
    assert list(pieces) == [bedrock_module.Generation("", 0, 0, "stop")]
    assert events.closed


@pytest.mark.parametrize("log_prompts", [False, True])
def test_the_prompt_is_logged_only_when_log_prompts_is_on(
    bedrock: dict[str, Any],
    event: Any,
    context: Any,
    caplog: pytest.LogCaptureFixture,
    log_prompts: bool,
) -> None:
    bedrock["stream"] = FakeStream([titan_chunk({"outputText": "x", "completionReason": "FINISH"})])
    prompt = json.loads(event("query.json")["body"])["prompt"]
    chat = json.loads(event("query_conversation.json")["body"])["messages"]

    with caplog.at_level(logging.INFO, logger="llm_lambda"):
        stream(bedrock, event("query.json"), context, log_prompts)
        usage = {"inputTokens": 9, "outputTokens": 0}
        bedrock["stream"] = FakeStream([{"messageStop": {"stopReason": "end_turn"}}, {"metadata": {"usage": usage}}])
        stream(bedrock, event("query_conversation.json"), context, log_prompts)

    # Each record as the function writes it (a JSON line on stderr, CloudWatch in AWS).
    lines = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    invoking = [line for line in lines if line["msg"] == "invoking model"]
    assert len(invoking) == 2
    if log_prompts:
        assert invoking[0]["prompt"] == prompt
        assert all(turn["content"] in str(invoking[1]["messages"]) for turn in chat)
    else:
        assert not any(key in line for line in invoking for key in ("prompt", "messages"))
        assert not [line for line in lines if any(text in json.dumps(line) for text in (prompt, chat[0]["content"]))]


def test_a_conversation_of_99_turns_is_read_and_one_of_101_refused(event: Any) -> None:
    from llm_wire.errors import BackendError
    from llm_wire.request import MAX_MESSAGES, parse_event

    turns = [{"role": ("user", "assistant")[i % 2], "content": f"turn {i}"} for i in range(MAX_MESSAGES + 2)]
    read = parse_event(event("query_conversation.json", {"messages": turns[:MAX_MESSAGES], "max_tokens": 5}))
    assert (MAX_MESSAGES, len(read.messages)) == (99, 99)
    with pytest.raises(BackendError) as caught:
        parse_event(event("query_conversation.json", {"messages": turns, "max_tokens": 5}))
    assert (caught.value.status, caught.value.detail) == (400, "messages: a list of 1 to 99 turns")


def batched(event: dict[str, Any], ms: str) -> dict[str, Any]:
    return event | {"headers": event["headers"] | {"X-Batch-Ms": ms}}


def without_timing(written: bytes) -> list[Any]:
    metadata, _, body = written.partition(handler.STREAM_SEPARATOR)
    lines = [json.loads(line) for line in body.splitlines()]
    return [json.loads(metadata)] + [{key: value for key, value in line.items() if key != "timing"} for line in lines]


def test_a_batched_stream_writes_the_same_lines_in_fewer_writes(
    bedrock: dict[str, Any], event: Any, context: Any
) -> None:
    function = Function(FunctionConfig(), bedrock=FakeBedrock(bedrock))
    bedrock["stream"] = FakeStream(ADA)
    plain = list(function.stream_handler(event("query_conversation.json"), context))
    bedrock["stream"] = FakeStream(ADA)
    joined = list(function.stream_handler(batched(event("query_conversation.json"), "1000"), context))

    assert len(plain) == 4  # the metadata, two text lines and the done line, each written as it is made
    # The metadata, the first line at once (a stream's first token is never held), then the lines made within a
    # second of it.
    assert len(joined) == 3 and joined[:2] == plain[:2]
    assert without_timing(b"".join(joined)) == without_timing(b"".join(plain))
    assert bedrock["stream"].closed


def text(piece: str) -> dict[str, Any]:
    return {"type": "text", "text": piece}


def lines(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(event, ensure_ascii=False).encode() + b"\n" for event in events)


def test_lines_made_after_the_window_are_written_as_they_come() -> None:
    def slow() -> Iterator[dict[str, Any]]:
        for i in range(3):
            time.sleep(0.03)
            yield text(str(i))

    assert list(handler.joined(slow(), 0.01)) == [lines(text("0")), lines(text("1")), lines(text("2"))]
    # The first at once, however long the window; the text held after it is one line.
    assert list(handler.joined(slow(), 10)) == [lines(text("0")), lines(text("12"))]


def test_the_text_held_together_is_one_line_until_another_kind_of_event() -> None:
    call = {"type": "tool_call", "index": 0, "id": "c1", "name": "f", "arguments": "{}"}
    done = {"type": "done", "output_tokens": 5}
    events = [text("a"), text("b"), text(" c"), call, text("d"), text("é"), done]

    written = list(handler.joined((event for event in events), 10))

    assert written == [lines(text("a")), lines(text("b c"), call, text("dé"), done)]


def test_a_caller_that_hangs_up_closes_bedrocks_stream_batched_or_not(
    bedrock: dict[str, Any], event: Any, context: Any
) -> None:
    function = Function(FunctionConfig(), bedrock=FakeBedrock(bedrock))
    for ms in ("0", "1000"):
        bedrock["stream"] = FakeStream(ADA)
        written = function.stream_handler(batched(event("query_conversation.json"), ms), context)
        next(written)  # the metadata: the caller goes away before any line
        written.close()
        assert bedrock["stream"].closed, ms

    closed = []

    def endless() -> Iterator[dict[str, Any]]:
        try:
            while True:
                yield text("x")
        finally:
            closed.append(True)

    joined = handler.joined(endless(), 0.0)
    next(joined)
    joined.close()
    assert closed == [True]


@pytest.mark.parametrize("ms", ["", "-1", "1001", "1.5", "ten", "\u0663"])
def test_a_bad_batch_header_is_a_400_naming_it(bedrock: dict[str, Any], event: Any, context: Any, ms: str) -> None:
    metadata, lines = stream(bedrock, batched(event("query_conversation.json"), ms), context)

    assert metadata["statusCode"] == 400
    assert lines[0]["detail"] == "X-Batch-Ms: an integer from 0 to 1000"
    assert "converse_stream" not in bedrock
