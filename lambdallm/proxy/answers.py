"""The LLM backend's answers as the proxy reads them: the events of `POST /query/stream` (specs/backend.yaml
StreamEvent) and the model list of `GET /models`; anything a working backend does not send is an INTERNAL
ProxyError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lambdallm.proxy.errors import ProxyError, bad_backend_answer, from_backend_status
from llm_wire.timing import finite_ms
from llm_wire.tools import ToolCall, ToolCallPiece

FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Model:
    """One model the backend serves (specs/backend.yaml ModelInfo)."""

    id: str
    owned_by: str
    instruct: bool


def parse_models(body: bytes) -> list[Model]:
    """The backend's `GET /models` answer (a ModelList); anything else is an INTERNAL ProxyError."""
    data = _json_object(body)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise bad_backend_answer("models is missing or empty")
    listed = []
    for item in models:
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in ("id", "owned_by")):
            raise bad_backend_answer("a model has no id or owned_by")
        if not isinstance(item.get("instruct"), bool):
            raise bad_backend_answer("a model's instruct is not a boolean")
        listed.append(Model(item["id"], item["owned_by"], item["instruct"]))
    return listed


@dataclass(frozen=True)
class Completion:
    """A backend answer that matches the contract's BackendResponse."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    request_id: str
    tool_calls: tuple[ToolCall, ...] = ()
    timing: tuple[tuple[str, float], ...] = ()  # the done event's inclusive times (backend, model), in ms


def parse_stream_event(line: bytes) -> str | ToolCallPiece | Completion:
    """One line of a backend stream: the text of a `text` event, a `tool_call` piece, or the Completion of the
    `done` event (its text empty); an `error` event raises the ProxyError its status maps to, anything else an
    INTERNAL one."""
    data = _json_object(line)
    kind = data.get("type")
    if kind == "text" and isinstance(data.get("text"), str):
        return str(data["text"])
    if kind == "tool_call":
        index = data.get("index")
        fields = {key: data.get(key, "") for key in ("id", "name", "arguments")}
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024:
            raise bad_backend_answer("a tool_call event has no index")
        if not all(isinstance(value, str) for value in fields.values()):
            raise bad_backend_answer("a tool_call event's id, name or arguments is not a string")
        return ToolCallPiece(index, **fields)
    if kind == "done":
        return _completion(data | {"text": ""})
    if kind == "error" and isinstance(data.get("status"), int):
        raise from_backend_status(data["status"], line)
    raise bad_backend_answer(f"stream event {str(kind)[:20]!r} is unknown or incomplete")


def joined_events(lines: list[bytes]) -> Iterator[str | ToolCallPiece | Completion]:
    """The events of lines that arrived together, each run of text pieces joined into one, so that what the
    backend wrote at once goes on as one message (a stream message's text is the text since the one before).
    Text before a failing line is passed on before its failure."""
    text: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_stream_event(line)
        except ProxyError:
            if text:
                yield "".join(text)
            raise
        if isinstance(event, str):
            text.append(event)
            continue
        if text:
            yield "".join(text)
            text = []
        yield event
    if text:
        yield "".join(text)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise bad_backend_answer("body is not JSON") from exc
    if not isinstance(data, dict):
        raise bad_backend_answer("body is not an object")
    return data


def _completion(data: dict[str, Any]) -> Completion:
    for key in ("text", "model", "finish_reason", "request_id"):
        if not isinstance(data.get(key), str):
            raise bad_backend_answer(f"{key} is missing or not a string")
    for key in ("input_tokens", "output_tokens"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _INT32_MAX:
            raise bad_backend_answer(f"{key} is missing or not a count")
    if data["finish_reason"] not in FINISH_REASONS:
        raise bad_backend_answer(f"finish_reason {data['finish_reason']!r} is unknown")
    fields = {key: data[key] for key in Completion.__dataclass_fields__ if key not in ("tool_calls", "timing")}
    return Completion(**fields, timing=_timing(data.get("timing")))


def _timing(timing: Any) -> tuple[tuple[str, float], ...]:
    """The done event's `timing` entries that are known tiers with a duration; advisory, so nothing in it fails
    the answer."""
    if not isinstance(timing, dict):
        return ()
    durations = ((name, finite_ms(timing.get(name))) for name in ("backend", "model"))
    return tuple((name, ms) for name, ms in durations if ms is not None)
