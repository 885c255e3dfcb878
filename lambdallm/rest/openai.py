"""OpenAI's API as an adapter of the one generation path: an OpenAI request becomes the LlmQueryRequest that /query
builds too, and the answer (whole or streamed) is written back in OpenAI's shapes (specs/openai.yaml)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from connexion.exceptions import ProblemException

from generated.llm.v1 import llm_pb2
from lambdallm.metrics import TokenCounter
from lambdallm.rest import llm, models, timing
from lambdallm.rest.models import ServedModel
from lambdallm.rest.openai_errors import openai_error
from llm_wire.limits import MAX_TOKENS

ROLES = {"user": llm_pb2.ROLE_USER, "assistant": llm_pb2.ROLE_ASSISTANT, "tool": llm_pb2.ROLE_TOOL}
CHOICES = {
    "none": llm_pb2.ToolChoice.MODE_NONE,
    "auto": llm_pb2.ToolChoice.MODE_AUTO,
    "required": llm_pb2.ToolChoice.MODE_REQUIRED,
}
NO_ARGUMENTS = {"type": "object", "properties": {}}  # a function's parameters when OpenAI's request has none
SYSTEM_ROLES = ("system", "developer")
COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
DONE = b"data: [DONE]\n\n"
# A field the proxy names in a 400 (`messages[1].role: ...`): renamed to what the OpenAI request called it.
_FIELD = re.compile(r"^(messages\[(\d+)\]|[a-z_]+)")


@dataclass(frozen=True)
class Translated:
    """The gRPC request for an OpenAI request, and how to name the proxy's fields in the client's words."""

    query: llm_pb2.LlmQueryRequest
    positions: tuple[int, ...] = ()  # the OpenAI message index of each turn
    names: dict[str, str] = field(default_factory=dict)  # the proxy's field -> the OpenAI param

    @contextmanager
    def openai_names(self) -> Iterator[None]:
        """Rename the field a 400 of the block names (`stop_sequences` -> `stop`, `messages[0]` -> `messages[1]`)."""
        try:
            yield
        except ProblemException as exc:
            if exc.status_code != 400 or not isinstance(exc.detail, str):
                raise
            raise ProblemException(status=400, title=exc.title, detail=_FIELD.sub(self._rename, exc.detail)) from exc

    def _rename(self, match: re.Match[str]) -> str:
        if match.group(2) is not None and int(match.group(2)) < len(self.positions):
            return f"messages[{self.positions[int(match.group(2))]}]"
        return self.names.get(match.group(1), match.group(1))


def text_of(content: str | list[dict[str, str]] | None) -> str:
    """A message's text: the string, or its text parts joined by newlines (none: empty)."""
    if content is None:
        return ""
    return content if isinstance(content, str) else "\n".join(part["text"] for part in content)


def turn_of(message: dict[str, Any]) -> llm_pb2.ChatMessage:
    """A user, assistant or tool message as a turn: an assistant's calls and a tool result's call id with it."""
    calls = [
        llm_pb2.ToolCall(id=call["id"], name=call["function"]["name"], arguments=call["function"]["arguments"])
        for call in message.get("tool_calls") or []
    ]
    return llm_pb2.ChatMessage(
        role=ROLES[message["role"]],
        content=text_of(message.get("content")),
        tool_calls=calls,
        tool_call_id=message.get("tool_call_id", ""),
    )


def tools_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request's tools, tool_choice and response_format as the gRPC request's fields."""
    fields: dict[str, Any] = {}
    if body.get("tools"):
        fields["tools"] = [
            llm_pb2.Tool(
                name=tool["function"]["name"],
                description=tool["function"].get("description", ""),
                parameters=json.dumps(tool["function"].get("parameters") or NO_ARGUMENTS),
            )
            for tool in body["tools"]
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        fields["tool_choice"] = llm_pb2.ToolChoice(mode=CHOICES[choice])
    elif isinstance(choice, dict):
        mode = llm_pb2.ToolChoice.MODE_NAMED
        fields["tool_choice"] = llm_pb2.ToolChoice(mode=mode, name=choice["function"]["name"])
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        fields["json_schema"] = json.dumps({"type": "object"})
    elif response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        fields["json_schema"] = json.dumps(schema)
    return fields


def stop_of(stop: str | list[str] | None) -> list[str]:
    """OpenAI's `stop` (a string, a list or null) as stop sequences."""
    return [stop] if isinstance(stop, str) else list(stop or [])


def chat_request(body: dict[str, Any]) -> Translated:
    """The gRPC request for a spec-validated chat completion request: system and developer messages become the
    system text, user and assistant messages the turns (the proxy checks their order and names the turn)."""
    system, turns, positions = [], [], []
    for index, message in enumerate(body["messages"]):
        if message["role"] in SYSTEM_ROLES:
            system.append(text_of(message["content"]))
        else:
            turns.append(turn_of(message))
            positions.append(index)
    if not turns:
        detail = "messages: at least one user message is required"
        raise ProblemException(status=400, title="Bad Request", detail=detail)
    tokens_field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    query = llm_pb2.LlmQueryRequest(
        messages=turns,
        system="\n\n".join(system),
        max_tokens=body.get(tokens_field, MAX_TOKENS),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop_sequences=stop_of(body.get("stop")),
        model=body["model"],
        **tools_of(body),
    )
    names = {"system": "messages: the system and developer messages joined", "stop_sequences": "stop"}
    names["json_schema"] = "response_format"
    names["max_tokens"] = tokens_field
    return Translated(query, tuple(positions), names)


def completion_request(body: dict[str, Any]) -> Translated:
    """The gRPC request for a spec-validated completion request: the prompt continued as it is, on any model."""
    query = llm_pb2.LlmQueryRequest(
        prompt=body["prompt"],
        continuation=True,
        max_tokens=body.get("max_tokens", COMPLETION_MAX_TOKENS),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop_sequences=stop_of(body.get("stop")),
        model=body["model"],
    )
    return Translated(query, names={"stop_sequences": "stop"})


def usage(reply: Any) -> dict[str, int]:
    """OpenAI's usage object for a reply or a stream's summary."""
    total = reply.input_tokens + reply.output_tokens
    return {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens, "total_tokens": total}


def chat_completion(reply: llm_pb2.LlmQueryResponse, request_id: str) -> dict[str, Any]:
    """A `chat.completion` object for the gRPC reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message = {
            "role": "assistant",
            "content": reply.text or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in reply.tool_calls
            ],
        }
    choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
    return _envelope("chatcmpl", "chat.completion", reply.model, request_id) | {
        "choices": [choice],
        "usage": usage(reply),
    }


def completion(reply: llm_pb2.LlmQueryResponse, request_id: str) -> dict[str, Any]:
    """A `text_completion` object for the gRPC reply."""
    choice = {"index": 0, "text": reply.text, "finish_reason": reply.finish_reason, "logprobs": None}
    return _envelope("cmpl", "text_completion", reply.model, request_id) | {"choices": [choice], "usage": usage(reply)}


def model_object(info: ServedModel) -> dict[str, Any]:
    """OpenAI's model object for one model the backend serves (`created` is unknown: 0)."""
    return {"id": info.id, "object": "model", "created": 0, "owned_by": info.owned_by}


async def chat_completion_chunks(
    messages: AsyncIterator[llm_pb2.GenerateTextStreamResponse], model: str, request_id: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """The server-sent `chat.completion.chunk` events of a streamed answer, then `data: [DONE]`: a first chunk with
    the role, one per piece of text, one with the finish reason, and (include_usage) one with the usage. A
    failure after the stream began is one `data: {"error": ...}` event, without [DONE]."""
    envelope = _envelope("chatcmpl", "chat.completion.chunk", model, request_id)
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, last: dict[str, Any] | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _data(envelope | {"choices": [choice]} | extra | (last or {}))

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for message in messages:
            if message.text:
                yield chunk({"content": message.text})
            if message.HasField("tool_call"):
                yield chunk({"tool_calls": [tool_call_delta(message.tool_call)]})
            if message.HasField("summary"):
                envelope["model"] = message.summary.model or model
                # The whole Server-Timing on the last chunk (its headers left first): clients ignore the field.
                last = {"timing": timing.current().summary()}
                yield chunk({}, message.summary.finish_reason, None if include_usage else last)
                if include_usage:
                    yield _data(envelope | {"choices": [], "usage": usage(message.summary)} | last)
                yield DONE
    except ProblemException as failure:
        yield _data(openai_error(failure.status_code, str(failure.detail or failure.title)))
    finally:
        await llm.aclose(messages)


def tool_call_delta(piece: llm_pb2.ToolCallDelta) -> dict[str, Any]:
    """A piece of a call as OpenAI streams it: the first with its id, type and name (and arguments so far, none),
    the next ones with only their index and a fragment of the arguments."""
    if piece.id:
        function = {"name": piece.name, "arguments": piece.arguments}
        return {"index": piece.index, "id": piece.id, "type": "function", "function": function}
    return {"index": piece.index, "function": {"arguments": piece.arguments}}


def _envelope(prefix: str, kind: str, model: str, request_id: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{request_id}", "object": kind, "created": int(time.time()), "model": model}


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def create_chat_completion(
    proxy: llm.ProxyClient, body: dict[str, Any], request_id: str, deadline_s: float, tokens: TokenCounter
) -> dict[str, Any] | AsyncIterator[bytes]:
    """Answer a chat completion request: a `chat.completion`, or (stream) its chunks as server-sent events."""
    translated = chat_request(body)
    with translated.openai_names():
        if body.get("stream"):
            messages = await llm.query_stream(proxy, translated.query, request_id, deadline_s, tokens)
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return chat_completion_chunks(messages, body["model"], request_id, include_usage)
        return chat_completion(await llm.query(proxy, translated.query, request_id, deadline_s, tokens), request_id)


async def create_completion(
    proxy: llm.ProxyClient, body: dict[str, Any], request_id: str, deadline_s: float, tokens: TokenCounter
) -> dict[str, Any]:
    """Answer a completion request with a `text_completion`."""
    translated = completion_request(body)
    with translated.openai_names():
        return completion(await llm.query(proxy, translated.query, request_id, deadline_s, tokens), request_id)


async def retrieve_model(proxy: llm.ProxyClient, model: str, request_id: str, deadline_s: float) -> dict[str, Any]:
    """The model object of `model`, or a 404 naming the ids the backend serves."""
    served = await models.list_models(proxy, request_id, deadline_s)
    for info in served:
        if info.id == model:
            return model_object(info)
    detail = f"model: {model[:256]!r} is not served here (served: {', '.join(info.id for info in served)})"
    raise ProblemException(status=404, title="Not Found", detail=detail)
