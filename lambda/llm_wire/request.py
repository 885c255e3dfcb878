"""Parse an API Gateway proxy event's body into a `QueryRequest`, to the bounds of specs/backend.yaml."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_wire import strict_json, tools
from llm_wire.errors import BackendError
from llm_wire.limits import (
    MAX_MESSAGES,
    MAX_MODEL_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_SYSTEM_CHARS,
    MAX_TOKENS,
    MODEL_ID_PATTERN,
)
from llm_wire.tools import AUTO_CHOICE, Tool, ToolCall, ToolChoice

FIELDS = (
    "prompt",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "model",
    "continuation",
    "tools",
    "tool_choice",
    "json_schema",
)
ROLES = ("user", "assistant")
MODEL_ID = re.compile(MODEL_ID_PATTERN)


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation: `user`, `assistant` or `tool`, and what was said; an assistant's calls, or the
    id of the call a tool turn answers."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class QueryRequest:
    """One validated generation request (the BackendRequest schema): a prompt, or a conversation (`messages`)."""

    prompt: str | None
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: tuple[str, ...] = ()
    messages: tuple[Turn, ...] = ()
    system: str | None = None
    model: str | None = None  # None: the backend's default model
    continuation: bool = False  # the prompt is text to continue, not an instruction (specs/backend.yaml)
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = AUTO_CHOICE
    json_schema: dict[str, Any] | None = None  # structured output: the schema the answer's text follows

    @property
    def chars(self) -> int:
        """Characters of input text: the prompt, or every turn (its calls' arguments too) and the system text."""
        if self.prompt is not None:
            return len(self.prompt)
        return conversation_chars(self.messages, self.system)


def conversation_chars(turns: Sequence[Turn], system: str | None) -> int:
    """A conversation's text, what MAX_PROMPT_CHARS bounds: every turn's, its calls' arguments (the model's
    text too), and the system text."""
    spoken = sum(len(turn.content) + sum(len(call.arguments) for call in turn.tool_calls) for turn in turns)
    return spoken + len(system or "")


def parse_event(event: Any) -> QueryRequest:
    """Decode and validate the event's JSON body; a `BackendError` 400 names the offending field, or says what
    of the event could not be read (any event, of any shape, is either a request or a 400)."""
    if not isinstance(event, dict):
        raise BackendError(400, "the event is not an API Gateway proxy event (a JSON object)")
    body = event.get("body")
    if not body:
        raise BackendError(400, "the request body is empty; expected a JSON object")
    if not isinstance(body, str):
        raise BackendError(400, "the event's body is not a string")
    raw: str | bytes = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: characters beyond ASCII
            raise BackendError(400, "the request body is not valid base64") from exc
    try:
        data = strict_json.loads(raw)
    except strict_json.JsonRejected as exc:
        raise BackendError(400, exc.detail) from exc
    return parse_body(data)


# How long the streaming function may hold its lines to write them together (specs/backend.yaml, /query/stream).
BATCH_HEADER, MAX_BATCH_MS = "X-Batch-Ms", 1000


def header(event: Any, name: str) -> str | None:
    """The value of the event's header `name` (any case), if the event has one that is a non-empty string."""
    headers = event.get("headers") if isinstance(event, dict) else None
    if isinstance(headers, dict):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name and isinstance(value, str) and value:
                return value
    return None


def field_value(event: Any, name: str) -> str | None:
    """The value of header field `name` (any case) as one line: its values joined by commas when the client sent
    it more than once (RFC 9110 5.3; API Gateway's `headers` keeps only the last one, `multiValueHeaders` all)."""
    multi = event.get("multiValueHeaders") if isinstance(event, dict) else None
    if isinstance(multi, dict):
        for key, values in multi.items():
            if isinstance(key, str) and key.lower() == name and isinstance(values, list):
                return ", ".join(value for value in values if isinstance(value, str)) or None
    return header(event, name)


def parse_body(data: Any) -> QueryRequest:
    """Validate a decoded JSON body into a `QueryRequest`."""
    if not isinstance(data, dict):
        raise BackendError(400, "the request body must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise BackendError(400, f"{unknown[0][:64]}: unknown field (allowed: {', '.join(FIELDS)})")
    if ("prompt" in data) == ("messages" in data):
        raise BackendError(400, "prompt, messages: exactly one of the two is required")
    prompt = data.get("prompt")
    messages: tuple[Turn, ...] = ()
    system: str | None = None
    if "prompt" in data:
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= MAX_PROMPT_CHARS:
            raise BackendError(400, f"prompt: a string of 1 to {MAX_PROMPT_CHARS} characters")
        if "system" in data:
            raise BackendError(400, "system: not with prompt")
    else:
        messages, system = parse_conversation(data)
    max_tokens: Any = data.get("max_tokens")
    if not _is_int(max_tokens) or not 1 <= max_tokens <= MAX_TOKENS:
        raise BackendError(400, f"max_tokens: required, an integer from 1 to {MAX_TOKENS}")
    stops = data.get("stop_sequences", [])
    if not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES:
        raise BackendError(400, f"stop_sequences: a list of at most {MAX_STOP_SEQUENCES} strings")
    if not all(isinstance(s, str) and 1 <= len(s) <= MAX_STOP_CHARS for s in stops):
        raise BackendError(400, f"stop_sequences: each a string of 1 to {MAX_STOP_CHARS} characters")
    model, continuation = _model(data), data.get("continuation", False)
    if not isinstance(continuation, bool):
        raise BackendError(400, "continuation: a boolean")
    if continuation and "messages" in data:
        raise BackendError(400, "continuation: only with prompt (a conversation is answered)")
    functions, choice = tools.parse_tools(data)
    if "tools" in data and "messages" not in data:
        raise BackendError(400, "tools: only with messages (a prompt is continued, not answered)")
    if any(turn.role == "tool" for turn in messages) and not functions:
        raise BackendError(400, "tools: required when the conversation holds tool calls")
    json_schema = tools.parse_json_schema(data)
    return QueryRequest(
        prompt=prompt,
        max_tokens=int(max_tokens),
        temperature=_unit("temperature", data) if "temperature" in data else None,
        top_p=_unit("top_p", data) if "top_p" in data else None,
        stop_sequences=tuple(stops),
        messages=messages,
        system=system,
        model=model,
        continuation=continuation,
        tools=functions,
        tool_choice=choice,
        json_schema=json_schema,
    )


def _model(data: dict[str, Any]) -> str | None:
    """The request's `model`, if it names one: a non-empty id of at most MAX_MODEL_ID_CHARS characters."""
    if "model" not in data:
        return None
    model = data["model"]
    if not isinstance(model, str) or not is_model_id(model):
        raise BackendError(400, f"model: a model id of 1 to {MAX_MODEL_ID_CHARS} letters, digits and ._:/-")
    return model


def parse_conversation(data: dict[str, Any]) -> tuple[tuple[Turn, ...], str | None]:
    """Validate `messages` and `system`: user first; user and assistant alternating, an assistant's calls each
    answered by a tool turn right after it; the user's or a tool's turn last; text within the bounds."""
    messages = data["messages"]
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise BackendError(400, f"messages: a list of 1 to {MAX_MESSAGES} turns")
    turns: list[Turn] = []
    answers = tools.Answers()
    for i, item in enumerate(messages):
        turn = _turn(item, i, turns[-1].role if turns else None, answers)
        turns.append(turn)
    if turns[-1].role == "assistant":
        raise BackendError(400, "messages: the last turn must be the user's")
    answers.check_done(len(turns) - 1)
    system = data.get("system")
    if system is not None and (not isinstance(system, str) or not 1 <= len(system) <= MAX_SYSTEM_CHARS):
        raise BackendError(400, f"system: a string of 1 to {MAX_SYSTEM_CHARS} characters")
    if conversation_chars(turns, system) > MAX_PROMPT_CHARS:
        raise BackendError(400, f"messages: all turns and system together exceed {MAX_PROMPT_CHARS} characters")
    return tuple(turns), system


def _turn(item: Any, i: int, previous: str | None, answers: tools.Answers) -> Turn:
    """One turn, checked against the turn before it (`previous` role) and the calls still unanswered."""
    role = item.get("role") if isinstance(item, dict) else None
    extra = {"assistant": {"tool_calls"}, "tool": {"tool_call_id"}}.get(role if isinstance(role, str) else "", set())
    if not isinstance(item, dict) or not {"role"} <= set(item) <= {"role", "content"} | extra:
        raise BackendError(400, f"messages[{i}]: an object with exactly `role` and `content`")
    if "content" not in item and "tool_calls" not in item:
        raise BackendError(400, f"messages[{i}]: an object with exactly `role` and `content`")
    expected = "assistant" if previous == "user" else "user"
    if role == "tool" and previous not in ("assistant", "tool"):
        raise BackendError(400, f"messages[{i}].role: tool only right after an assistant turn that calls tools")
    if role != "tool" and (role != expected and not (previous == "tool" and role in ROLES)):
        raise BackendError(400, f"messages[{i}].role: must be {expected} (turns alternate, user first)")
    if role == "tool":
        answers.answer(item.get("tool_call_id"), i)
    else:
        answers.check_done(i)
    content = item.get("content", "")
    if not isinstance(content, str) or not (1 if "tool_calls" not in item else 0) <= len(content) <= MAX_PROMPT_CHARS:
        raise BackendError(400, f"messages[{i}].content: a string of 1 to {MAX_PROMPT_CHARS} characters")
    if content and not content.strip():
        raise BackendError(400, f"messages[{i}].content: must not be blank (Bedrock refuses a blank turn)")
    calls = tools.parse_tool_calls(item, i) if "tool_calls" in item else ()
    answers.called(calls) if calls else None
    return Turn(str(role), content, calls, item.get("tool_call_id"))


def is_model_id(text: str) -> bool:
    """Whether `text` is a model id as the specs' `model` allows: 1 to MAX_MODEL_ID_CHARS characters of the
    pattern (and no trailing newline, which Python's `$` would let through)."""
    return len(text) <= MAX_MODEL_ID_CHARS and MODEL_ID.fullmatch(text) is not None


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _unit(name: str, data: dict[str, Any]) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise BackendError(400, f"{name}: a number from 0 to 1")
    return float(value)
