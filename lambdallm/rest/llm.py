"""The REST tier's domain: generate text and check readiness through the gRPC proxy."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from connexion.exceptions import ProblemException
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm import tracing
from lambdallm.metrics import TokenCounter
from lambdallm.rest import timing, usage
from lambdallm.rest.calls import cancel_call, opened
from lambdallm.rest.problems import map_grpc_errors, problem_body

log = logging.getLogger("lambdallm.rest")
SERVICE_NAME = llm_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name


ROLES = {"user": llm_pb2.ROLE_USER, "assistant": llm_pb2.ROLE_ASSISTANT, "tool": llm_pb2.ROLE_TOOL}
CHOICES = {
    "auto": llm_pb2.ToolChoice.MODE_AUTO,
    "required": llm_pb2.ToolChoice.MODE_REQUIRED,
    "none": llm_pb2.ToolChoice.MODE_NONE,
}


def to_query_request(body: dict[str, Any]) -> llm_pb2.LlmQueryRequest:
    """The gRPC request for a spec-validated GenerateRequest body, a prompt or a conversation.

    The proxy checks what the schema cannot (exactly one of prompt and messages, turn order) and says which field.
    """
    return llm_pb2.LlmQueryRequest(
        prompt=body.get("prompt", ""),
        messages=[_turn(message) for message in body.get("messages", [])],
        system=body.get("system", ""),
        max_tokens=body["max_tokens"],
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop_sequences=body.get("stop_sequences", []),
        model=body.get("model", ""),
        continuation=body.get("continuation", False),
        tools=[
            llm_pb2.Tool(name=t["name"], description=t.get("description", ""), parameters=json.dumps(t["parameters"]))
            for t in body.get("tools", [])
        ],
        tool_choice=_tool_choice(body["tool_choice"]) if "tool_choice" in body else None,
        json_schema=json.dumps(body["json_schema"]) if "json_schema" in body else "",
    )


def _turn(message: dict[str, Any]) -> llm_pb2.ChatMessage:
    calls = [llm_pb2.ToolCall(**call) for call in message.get("tool_calls", [])]
    return llm_pb2.ChatMessage(
        role=ROLES[message["role"]],
        content=message.get("content", ""),
        tool_calls=calls,
        tool_call_id=message.get("tool_call_id", ""),
    )


def _tool_choice(choice: str | dict[str, str]) -> llm_pb2.ToolChoice:
    if isinstance(choice, dict):
        return llm_pb2.ToolChoice(mode=llm_pb2.ToolChoice.MODE_NAMED, name=choice["name"])
    return llm_pb2.ToolChoice(mode=CHOICES[choice])


@dataclass(frozen=True)
class ProxyClient:
    """The gRPC proxy as the REST tier calls it: its stub, and the metadata every call carries (the proxy's token).

    The token travels as per-call metadata, not through a channel interceptor: grpc.aio runs an intercepted call in
    a task of its own, which a hang-up would cancel mid-read, leaking the batch (lambdallm/rest/calls.py)."""

    stub: llm_pb2_grpc.LlmServiceStub
    metadata: tuple[tuple[str, str], ...] = ()

    def call_metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        """The metadata of one call: the token, and the request id."""
        return (*self.metadata, ("x-request-id", request_id), *tracing.context_metadata())


async def generate_text(
    proxy: ProxyClient, body: dict[str, Any], request_id: str, deadline_s: float, tokens: TokenCounter
) -> dict[str, Any]:
    """Call GenerateText with the validated body; return the public GenerateResponse as a dict."""
    reply = await query(proxy, to_query_request(body), request_id, deadline_s, tokens)
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
    return _response(reply.text, reply, request_id, calls)


async def query(
    proxy: ProxyClient, request: llm_pb2.LlmQueryRequest, request_id: str, deadline_s: float, tokens: TokenCounter
) -> llm_pb2.LlmQueryResponse:
    """Call GenerateText with `request` (every API's generation goes through here); a ProblemException if it fails."""
    call = opened(proxy.stub.GenerateText(request, timeout=deadline_s, metadata=proxy.call_metadata(request_id)))
    with map_grpc_errors():
        reply: llm_pb2.LlmQueryResponse = await call
    timing.current().record(await call.trailing_metadata())
    tokens.count(reply.input_tokens, reply.output_tokens)
    usage.record(reply.model, reply.input_tokens, reply.output_tokens)
    return reply


async def generate_text_stream(
    proxy: ProxyClient, body: dict[str, Any], request_id: str, deadline_s: float, tokens: TokenCounter
) -> AsyncIterator[bytes]:
    """Call GenerateTextStream; once its first message is in, return the server-sent events of the answer.

    A failure before the first message raises a ProblemException (an ordinary problem+json answer); a failure
    after it becomes the stream's `error` event. The deadline bounds the whole stream.
    """
    messages = await query_stream(proxy, to_query_request(body), request_id, deadline_s, tokens)
    return _events(messages, request_id)


async def query_stream(
    proxy: ProxyClient, request: llm_pb2.LlmQueryRequest, request_id: str, deadline_s: float, tokens: TokenCounter
) -> AsyncIterator[llm_pb2.GenerateTextStreamResponse]:
    """Call GenerateTextStream with `request` (every API's streamed generation goes through here); once its first
    message is in, return the stream's messages, the last one carrying the summary.

    A failure before the first message raises a ProblemException; after it, the iterator raises a ProblemException
    (a stream that ends without a summary is a 502). The deadline bounds the whole stream."""
    stream_request = llm_pb2.GenerateTextStreamRequest(query=request)
    metadata = proxy.call_metadata(request_id)
    call = opened(proxy.stub.GenerateTextStream(stream_request, timeout=deadline_s, metadata=metadata))
    try:
        with map_grpc_errors():
            first = await call.read()
    except BaseException:
        cancel_call(call)
        raise
    timing.current().first_token()
    return _messages(call, first, tokens)


async def _messages(call: Any, message: Any, tokens: TokenCounter) -> AsyncIterator[llm_pb2.GenerateTextStreamResponse]:
    try:
        with map_grpc_errors():
            while message is not grpc.aio.EOF:
                if message.HasField("summary"):
                    tokens.count(message.summary.input_tokens, message.summary.output_tokens)
                    usage.record(message.summary.model, message.summary.input_tokens, message.summary.output_tokens)
                    timing.current().record(await call.trailing_metadata())  # sent with the status, right after
                    yield message
                    return
                yield message
                message = await call.read()
        detail = "the gRPC proxy ended the stream without a summary"
        raise ProblemException(status=502, title="Bad Gateway", detail=detail)
    finally:
        cancel_call(call)  # a no-op once the stream has ended; stops the generation if our client went away


async def _events(messages: AsyncIterator[llm_pb2.GenerateTextStreamResponse], request_id: str) -> AsyncIterator[bytes]:
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}  # the tool calls so far, by index, for the `done` event
    try:
        async for message in messages:
            if message.text:
                text.append(message.text)
                yield server_sent_event("text", {"text": message.text})
            if message.HasField("tool_call"):
                yield server_sent_event("tool_call", _tool_call_piece(message.tool_call, calls))
            if message.HasField("summary"):
                whole = [calls[index] for index in sorted(calls)]
                done = _response("".join(text), message.summary, request_id, whole)
                yield server_sent_event("done", done | {"timing": timing.current().summary()})
    except ProblemException as failure:
        yield server_sent_event("error", problem_body(failure.status_code, failure.title, failure.detail))
    finally:
        await aclose(messages)


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (and so end its gRPC call) however its reader stopped."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def server_sent_event(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: its type and its JSON data."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _tool_call_piece(delta: llm_pb2.ToolCallDelta, calls: dict[int, dict[str, str]]) -> dict[str, Any]:
    """A `tool_call` event's data (the fields the piece has), added to its call in `calls`."""
    call = calls.setdefault(delta.index, {"id": delta.id, "name": delta.name, "arguments": ""})
    call["arguments"] += delta.arguments
    piece = {"id": delta.id, "name": delta.name, "arguments": delta.arguments}
    return {"index": delta.index} | {key: value for key, value in piece.items() if value}


def _response(text: str, reply: Any, request_id: str, calls: list[dict[str, str]] | None = None) -> dict[str, Any]:
    response = {
        "text": text,
        "model": reply.model,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "finish_reason": reply.finish_reason,
        "request_id": request_id,
    }
    return response | ({"tool_calls": calls} if calls else {})


async def check_ready(health: health_pb2_grpc.HealthStub, timeout_s: float, proxy: ProxyClient) -> None:
    """Raise a 503 problem unless the proxy says LlmService is SERVING (it probes the backend to say so). The check
    carries the token of `proxy`'s real calls, so a token the proxy refuses makes the tier not ready."""
    try:
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        reply = await health.Check(request, timeout=timeout_s, metadata=proxy.metadata)
    except grpc.aio.AioRpcError as exc:
        log.warning("readiness check failed", extra={"code": exc.code().name, "details": exc.details()})
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            detail = "the gRPC proxy refuses this tier's token (UNAUTHENTICATED): check grpc_token or grpc_token_file"
        else:
            detail = f"gRPC proxy unreachable: {exc.code().name}"  # its details name addresses: the log has them
        raise ProblemException(status=503, title="Service Unavailable", detail=detail) from exc
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        detail = f"gRPC proxy reports {status}: the LLM backend is unreachable"
        raise ProblemException(status=503, title="Service Unavailable", detail=detail)
