"""The Bedrock boundary: InvokeModel (Titan Text) for a Titan prompt, Converse for conversations and every other
model's prompt (one user turn), one table of failures."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llm_lambda.bedrock_errors import map_bedrock_exceptions
from llm_lambda.converse_tools import StreamCalls, answer_calls, converse_turns, tool_arguments
from llm_lambda.models import takes_invoke_model
from llm_wire.errors import BackendError
from llm_wire.request import QueryRequest
from llm_wire.tools import ToolCall, ToolCallPiece

FINISH_REASONS = {
    "FINISH": "stop",
    "FINISHED": "stop",
    "STOP_CRITERIA_MET": "stop",
    "LENGTH": "length",
    "CONTENT_FILTERED": "content_filter",
}
# Converse stopReason -> our finish reason; any other (tool_use, malformed output ...) is an answer we cannot use.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}

# Model families that take no system prompt: Bedrock's Converse refuses `system` for them (ValidationException).
# This is the one place that decides what happens to a conversation's `system` text for such a model: it goes
# before the first user turn, separated by a blank line, so the caller's instructions still reach the model.
NO_SYSTEM_PROMPT = ("amazon.titan-text",)


@dataclass(frozen=True)
class Generation:
    """What the model produced, with its token counts and our finish reason."""

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    tool_calls: tuple[ToolCall, ...] = ()  # the tools the model called (Converse's toolUse blocks)
    model_ms: float | None = None  # Bedrock's own latency for the call, when it says (docs/tracing.md)


def titan_body(request: QueryRequest) -> dict[str, Any]:
    """The Titan Text InvokeModel body for `request`; unset options keep Bedrock's defaults."""
    return {"inputText": request.prompt, "textGenerationConfig": _sampling(request, "maxTokenCount")}


def _sampling(request: QueryRequest, max_tokens_key: str) -> dict[str, Any]:
    """The request's sampling options in Bedrock's names (Titan's and Converse's differ only in max tokens')."""
    config: dict[str, Any] = {max_tokens_key: request.max_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop_sequences:
        config["stopSequences"] = list(request.stop_sequences)
    return config


def takes_system_prompt(model_id: str) -> bool:
    """Whether Converse accepts `system` for `model_id` (a plain id, an ARN or an inference profile). The family
    is looked for in the whole id: a custom model's ARN names its base model before its own last part
    (`...:custom-model/amazon.titan-text-express-v1:0:8k/abc123`), and no region or account holds a family name."""
    return not any(family in model_id for family in NO_SYSTEM_PROMPT)


def converse_request(model_id: str, request: QueryRequest) -> dict[str, Any]:
    """The Converse (and ConverseStream) arguments for a conversation, or for a prompt as one user turn; see
    NO_SYSTEM_PROMPT for `system`."""
    turns = converse_turns(request)
    config = _sampling(request, "maxTokens")
    arguments: dict[str, Any] = {"modelId": model_id, "messages": turns, "inferenceConfig": config}
    if request.system and takes_system_prompt(model_id):
        arguments["system"] = [{"text": request.system}]
    elif request.system:
        first = turns[0]["content"][0]
        first["text"] = f"{request.system}\n\n{first['text']}"
    return arguments | tool_arguments(request)


def parse_titan(payload: bytes) -> Generation:
    """Read a Titan Text answer; anything malformed is a 502, never an empty success."""
    try:
        answer = json.loads(payload)
        result = answer["results"][0]
        text, reason = result["outputText"], result["completionReason"]
        input_tokens, output_tokens = answer["inputTextTokenCount"], result["tokenCount"]
        if not isinstance(text, str) or reason not in FINISH_REASONS:
            raise ValueError(f"outputText {type(text).__name__}, completionReason {reason!r}")
        if not all(isinstance(n, int) and n >= 0 for n in (input_tokens, output_tokens)):
            raise ValueError("token counts are not non-negative integers")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(502, "the model returned a malformed answer") from exc
    return Generation(text, input_tokens, output_tokens, FINISH_REASONS[reason])


def converse_generation(text: Any, stop_reason: Any, usage: Any) -> Generation:
    """A Generation from Converse's text, stopReason and usage; anything unusable is a 502."""
    try:
        input_tokens, output_tokens = usage["inputTokens"], usage["outputTokens"]
        if not isinstance(text, str) or stop_reason not in STOP_REASONS:
            raise ValueError(f"text {type(text).__name__}, stopReason {stop_reason!r}")
        if not all(isinstance(n, int) and n >= 0 for n in (input_tokens, output_tokens)):
            raise ValueError("token counts are not non-negative integers")
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(502, "the model returned a malformed answer") from exc
    return Generation(text, input_tokens, output_tokens, STOP_REASONS[stop_reason])


def parse_converse(response: dict[str, Any]) -> Generation:
    """Read a Converse answer: the assistant message's text blocks, its stopReason and usage."""
    try:
        blocks = response["output"]["message"]["content"]
        text: Any = "".join(block["text"] for block in blocks if "text" in block)
        calls = answer_calls(blocks)
    except (KeyError, TypeError) as exc:
        raise BackendError(502, "the model returned a malformed answer") from exc
    generation = converse_generation(text, response.get("stopReason"), response.get("usage"))
    if (generation.finish_reason == "tool_calls") != bool(calls):
        why = ValueError(f"stopReason {response.get('stopReason')!r} with {len(calls)} toolUse blocks")
        raise BackendError(502, "the model returned a malformed answer") from why
    return dataclasses.replace(generation, tool_calls=calls)


def invoke(client: Any, model_id: str, request: QueryRequest) -> Generation:
    """Call Bedrock InvokeModel with the Titan body and read its answer."""
    with map_bedrock_exceptions():
        response = client.invoke_model(
            modelId=model_id,
            body=json.dumps(titan_body(request)),
            contentType="application/json",
            accept="application/json",
        )
        payload = response["body"].read()
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return dataclasses.replace(parse_titan(payload), model_ms=latency(headers.get("x-amzn-bedrock-invocation-latency")))


def converse(client: Any, model_id: str, request: QueryRequest) -> Generation:
    """Call Bedrock Converse with the conversation and read its answer."""
    with map_bedrock_exceptions():
        response = client.converse(**converse_request(model_id, request))
    return dataclasses.replace(
        parse_converse(response), model_ms=latency((response.get("metrics") or {}).get("latencyMs"))
    )


def generate(client: Any, model_id: str, request: QueryRequest) -> Generation:
    """The one call for a request: InvokeModel with the Titan body for a prompt to a Titan model, Converse for
    anything else."""
    if request.prompt is not None and request.json_schema is None and takes_invoke_model(model_id):
        return invoke(client, model_id, request)
    return converse(client, model_id, request)


def generate_stream(client: Any, model_id: str, request: QueryRequest) -> StreamPieces:
    """The one streamed call for a request: InvokeModelWithResponseStream for a prompt to a Titan model,
    ConverseStream for anything else. Failures to start raise here; the iterator then yields the text as it comes
    and ends with the Generation (its text empty: it came in pieces). Closing the iterator closes Bedrock's stream."""
    if request.prompt is not None and request.json_schema is None and takes_invoke_model(model_id):
        return invoke_stream(client, model_id, request)
    return converse_stream(client, model_id, request)


def invoke_stream(client: Any, model_id: str, request: QueryRequest) -> StreamPieces:
    """Call Bedrock InvokeModelWithResponseStream with the Titan body (see `generate_stream`)."""
    with map_bedrock_exceptions():
        response = client.invoke_model_with_response_stream(
            modelId=model_id,
            body=json.dumps(titan_body(request)),
            contentType="application/json",
            accept="application/json",
        )
    return StreamPieces(_titan_pieces(response["body"]), response["body"])


def converse_stream(client: Any, model_id: str, request: QueryRequest) -> StreamPieces:
    """Call Bedrock ConverseStream with the conversation (see `generate_stream`)."""
    with map_bedrock_exceptions():
        response = client.converse_stream(**converse_request(model_id, request))
    return StreamPieces(_converse_pieces(response["stream"]), response["stream"])


class StreamPieces:
    """A Bedrock event stream's pieces: text, then the Generation. `close()` closes the stream's HTTP connection
    whether or not iterating began: closing a generator that never started runs none of its code, so a caller that
    went away before the first piece used to leave the connection open (issue 26)."""

    def __init__(self, pieces: Generator[str | ToolCallPiece | Generation], stream: object) -> None:
        self._pieces, self._stream = pieces, stream

    def __iter__(self) -> Iterator[str | ToolCallPiece | Generation]:
        return self._pieces

    def __next__(self) -> str | ToolCallPiece | Generation:
        return next(self._pieces)

    def close(self) -> None:
        """Stop the pieces and close Bedrock's event stream."""
        try:
            self._pieces.close()
        finally:
            _close(self._stream)


def latency(value: Any) -> float | None:
    """Bedrock's latency in ms (InvokeModel's X-Amzn-Bedrock-Invocation-Latency, Converse's metrics.latencyMs, a
    stream's invocationLatency), or None if it is absent or not a non-negative number."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return None
    return ms if 0 <= ms < float("inf") else None


def _close(stream: object) -> None:
    if close := getattr(stream, "close", None):
        close()


@contextmanager
def _closing(stream: object) -> Iterator[None]:
    """Close Bedrock's event stream (its HTTP connection) however the block ends."""
    try:
        yield
    finally:
        _close(stream)


def _titan_pieces(stream: Iterable[dict[str, Any]]) -> Generator[str | ToolCallPiece | Generation]:
    input_tokens, output_tokens, reason, model_ms = 0, 0, None, None
    with map_bedrock_exceptions(), _closing(stream):
        for event in stream:
            chunk = _titan_chunk(event)
            if chunk.get("outputText"):
                yield chunk["outputText"]
            input_tokens = chunk.get("inputTextTokenCount") or input_tokens
            output_tokens = chunk.get("totalOutputTextTokenCount") or output_tokens
            if metrics := chunk.get("amazon-bedrock-invocationMetrics"):
                input_tokens, output_tokens = metrics["inputTokenCount"], metrics["outputTokenCount"]
                model_ms = latency(metrics.get("invocationLatency"))
            reason = chunk.get("completionReason") or reason
    if reason not in FINISH_REASONS:
        raise BackendError(502, "the model's stream ended without a completion reason")
    yield Generation("", input_tokens, output_tokens, FINISH_REASONS[reason], model_ms=model_ms)


def _titan_chunk(event: dict[str, Any]) -> dict[str, Any]:
    try:
        chunk = json.loads(event["chunk"]["bytes"])
        if not isinstance(chunk, dict) or not isinstance(chunk.get("outputText", ""), str):
            raise ValueError("not a Titan chunk")
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(502, "the model streamed a malformed chunk") from exc
    return chunk


def _converse_pieces(stream: Iterable[dict[str, Any]]) -> Generator[str | ToolCallPiece | Generation]:
    stop_reason: Any = None
    usage: Any = None
    model_ms = None
    calls = StreamCalls()
    with map_bedrock_exceptions(), _closing(stream):
        for event in stream:
            if "contentBlockStart" in event and (piece := calls.start(event["contentBlockStart"])):
                yield piece
            elif "contentBlockDelta" in event:
                text = event["contentBlockDelta"].get("delta", {}).get("text", "")
                if text:
                    yield text
                elif piece := calls.delta(event["contentBlockDelta"]):
                    yield piece
            elif "messageStop" in event:
                stop_reason = event["messageStop"].get("stopReason")
            elif "metadata" in event:
                usage = event["metadata"].get("usage")
                model_ms = latency((event["metadata"].get("metrics") or {}).get("latencyMs"))
    yield dataclasses.replace(converse_generation("", stop_reason, usage), model_ms=model_ms)
