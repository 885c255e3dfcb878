"""The local Bedrock's boundary: Titan Text requests and answers (its errors and limits: bedrock_errors.py)."""

from __future__ import annotations

import math
from typing import Any

from lambdallm.local_cloud.bedrock_errors import (
    MAX_INPUT_CHARS,
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    OTHER_MAX_TOKENS,
    TITAN_MAX_TOKENS,
    validation,
)
from lambdallm.local_cloud.engines import Completion, GenerationRequest
from lambdallm.local_cloud.eventstream import Frames, chunk_event
from llm_wire import strict_json

CONFIG_KEYS = ("maxTokenCount", "temperature", "topP", "stopSequences")


def parse_request(body: bytes, model: str) -> GenerationRequest:
    """Validate a Titan Text body to the documented bounds; any problem is a ValidationException."""
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise validation(exc.detail) from exc
    if not isinstance(data, dict):
        raise validation("#: expected type: JSONObject")
    if extra := sorted(set(data) - {"inputText", "textGenerationConfig"}):
        raise validation(f"#: extraneous key [{extra[0]}] is not permitted")
    prompt = data.get("inputText")
    if not isinstance(prompt, str) or not prompt:
        raise validation("#/inputText: expected a non-empty string")
    if len(prompt) > MAX_INPUT_CHARS:
        raise validation(f"#/inputText: expected maxLength: {MAX_INPUT_CHARS}, actual: {len(prompt)}")
    config = data.get("textGenerationConfig", {})
    if not isinstance(config, dict):
        raise validation("#/textGenerationConfig: expected type: JSONObject")
    if extra := sorted(set(config) - set(CONFIG_KEYS)):
        raise validation(f"#/textGenerationConfig: extraneous key [{extra[0]}] is not permitted")
    limit = TITAN_MAX_TOKENS.get(model, OTHER_MAX_TOKENS)
    max_tokens = config.get("maxTokenCount", 512)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= limit:
        raise validation(f"#/textGenerationConfig/maxTokenCount: expected an integer from 1 to {limit}")
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise validation("#/textGenerationConfig/stopSequences: expected an array of non-empty strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise validation(f"#/textGenerationConfig/stopSequences: expected maxItems: {MAX_STOP_SEQUENCES}")
    if any(len(stop) > MAX_STOP_CHARS for stop in stops):
        raise validation(f"#/textGenerationConfig/stopSequences: expected items of maxLength: {MAX_STOP_CHARS}")
    return GenerationRequest(
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=_unit(config, "temperature", 0.7),
        top_p=_unit(config, "topP", 0.9),
        stop_sequences=tuple(stops),
    )


def unit_interval(value: Any) -> float | None:
    """`value` as a number in 0..1 (temperature, topP), or None when it is not one: each API words its own
    ValidationException for it, naming the key and the rule, never the value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= 1 else None


def _unit(config: dict[str, Any], key: str, default: float) -> float:
    value = unit_interval(config.get(key, default))
    if value is None:
        raise validation(f"#/textGenerationConfig/{key}: expected a number, minimum: 0, maximum: 1")
    return value


def answer(completion: Completion) -> dict[str, Any]:
    """The InvokeModel answer body for a completion."""
    result = {
        "tokenCount": completion.output_tokens,
        "outputText": completion.text,
        "completionReason": completion.reason,
    }
    return {"inputTextTokenCount": completion.input_tokens, "results": [result]}


def stream_chunk(text: str, tokens: int, input_tokens: int | None, reason: str | None) -> dict[str, Any]:
    """One InvokeModelWithResponseStream chunk body (before base64)."""
    return {
        "outputText": text,
        "index": 0,
        "totalOutputTextTokenCount": tokens,
        "completionReason": reason,
        "inputTextTokenCount": input_tokens,
    }


def _end(completion: Completion, latency_ms: int, first_byte_ms: int) -> list[bytes]:
    final = stream_chunk("", completion.output_tokens, completion.input_tokens, completion.reason)
    final["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": completion.input_tokens,
        "outputTokenCount": completion.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
    }
    return [chunk_event(final)]


# InvokeModelWithResponseStream's chunks for Titan Text.
FRAMES = Frames(
    start=list,
    piece=lambda text, tokens: chunk_event(stream_chunk(text, tokens, None, None)),
    end=_end,
)
