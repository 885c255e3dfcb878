"""The servicers: llm.v1.LlmService over the backend, and health checking that reflects the backend."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm import logs, tracing
from lambdallm.metrics import TokenCounter
from lambdallm.proxy.answers import Completion
from lambdallm.proxy.backend import Backend
from lambdallm.proxy.errors import NO_RETRY, ORIGIN_TRAILER, ProxyError
from llm_wire.errors import BackendError
from llm_wire.request import parse_body
from llm_wire.request_id import request_id
from llm_wire.timing import METADATA_KEY, format_timing
from llm_wire.tools import ToolCallPiece

SERVICE_NAME = llm_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name
log = logging.getLogger("lambdallm.proxy")


ROLES = {llm_pb2.ROLE_USER: "user", llm_pb2.ROLE_ASSISTANT: "assistant", llm_pb2.ROLE_TOOL: "tool"}
CHOICES = {
    llm_pb2.ToolChoice.MODE_AUTO: "auto",
    llm_pb2.ToolChoice.MODE_REQUIRED: "required",
    llm_pb2.ToolChoice.MODE_NONE: "none",
}


def to_backend_payload(request: llm_pb2.LlmQueryRequest) -> dict[str, Any]:
    """The backend's JSON body for `request`, checked by the backend's own validator (llm_wire.request): a
    request the proxy passes on is one the Lambda takes, and a bad one is INVALID_ARGUMENT in the Lambda's words,
    naming the field."""
    payload: dict[str, Any] = {}
    if request.prompt:  # proto3: an empty string is an absent field
        payload["prompt"] = request.prompt
    if request.messages:
        payload["messages"] = [_turn(message) for message in request.messages]
    if request.system:
        payload["system"] = request.system
    payload["max_tokens"] = request.max_tokens  # 0 (absent) is refused as required
    for name in ("temperature", "top_p"):
        if request.HasField(name):
            payload[name] = round(getattr(request, name), 6)  # float32 on the wire: 0.7 arrives as 0.699999988
    if request.stop_sequences:
        payload["stop_sequences"] = list(request.stop_sequences)
    if request.model:
        payload["model"] = request.model
    if request.continuation:
        payload["continuation"] = True
    _tools(request, payload)
    try:
        parse_body(payload)
    except BackendError as exc:
        raise ProxyError(grpc.StatusCode.INVALID_ARGUMENT, exc.detail) from None
    return payload


def _turn(message: llm_pb2.ChatMessage) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": ROLES.get(message.role, "unspecified")}
    if message.content or not message.tool_calls:
        turn["content"] = message.content
    if message.tool_calls:
        turn["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    if message.tool_call_id:
        turn["tool_call_id"] = message.tool_call_id
    return turn


def _tools(request: llm_pb2.LlmQueryRequest, payload: dict[str, Any]) -> None:
    """The request's tools, tool choice and json_schema in the backend's JSON (their schemas, JSON text on the
    wire, parsed: one that is not JSON is INVALID_ARGUMENT naming it)."""
    if request.tools:
        payload["tools"] = [
            {"name": tool.name, "description": tool.description, "parameters": _json(tool.parameters, f"tools[{i}]")}
            for i, tool in enumerate(request.tools)
        ]
    if request.HasField("tool_choice"):
        mode = request.tool_choice.mode
        payload["tool_choice"] = (
            {"name": request.tool_choice.name}
            if mode == llm_pb2.ToolChoice.MODE_NAMED
            else (CHOICES.get(mode, "unspecified"))
        )
    if request.json_schema:
        payload["json_schema"] = _json(request.json_schema, "json_schema")


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ProxyError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: a JSON Schema as JSON text") from None


def request_id_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's `x-request-id` metadata if the tiers' policy keeps it (llm_wire/request_id.py), or a new id."""
    sent = next((value for key, value in context.invocation_metadata() or () if key == "x-request-id"), None)
    kept = request_id(sent)
    tracing.tag_request(kept)
    return kept


class LlmService(llm_pb2_grpc.LlmServiceServicer):
    """Forwards each GenerateText call to the backend within the caller's deadline."""

    def __init__(self, backend: Backend, tokens: TokenCounter) -> None:
        self._backend = backend
        self._tokens = tokens

    async def GenerateText(
        self, request: llm_pb2.LlmQueryRequest, context: grpc.aio.ServicerContext
    ) -> llm_pb2.LlmQueryResponse:
        """One prompt in, one completion out; failures become the status the backend's answer maps to."""
        request_id = request_id_of(context)
        logs.request_id.set(request_id)
        started = time.perf_counter()
        try:
            completion = await self._backend.generate(to_backend_payload(request), request_id, context.time_remaining())
        except ProxyError as exc:
            await _abort(context, exc, started)
        self._done(started, completion, context)
        return llm_pb2.LlmQueryResponse(
            text=completion.text,
            model=completion.model,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            finish_reason=completion.finish_reason,
            request_id=request_id,
            tool_calls=[llm_pb2.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in completion.tool_calls],
        )

    async def GenerateTextStream(
        self, request: llm_pb2.GenerateTextStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[llm_pb2.GenerateTextStreamResponse]:
        """The same generation, each piece of text passed on as the backend streams it; the last message carries
        the summary. Failures, before or after the first message, are the same status codes as GenerateText's."""
        request_id = request_id_of(context)
        logs.request_id.set(request_id)
        started = time.perf_counter()
        try:
            payload = to_backend_payload(request.query)
            async for piece in self._backend.generate_stream(payload, request_id, context.time_remaining()):
                if isinstance(piece, Completion):
                    self._done(started, piece, context)
                    yield llm_pb2.GenerateTextStreamResponse(summary=_summary(piece, request_id))
                elif isinstance(piece, ToolCallPiece):
                    delta = llm_pb2.ToolCallDelta(**dataclasses.asdict(piece))
                    yield llm_pb2.GenerateTextStreamResponse(tool_call=delta)
                else:
                    yield llm_pb2.GenerateTextStreamResponse(text=piece)
        except ProxyError as exc:
            await _abort(context, exc, started)

    async def ListModels(
        self, request: llm_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> llm_pb2.ListModelsResponse:
        """The models the backend serves (its `GET /models`), the default first."""
        request_id = request_id_of(context)
        logs.request_id.set(request_id)
        started = time.perf_counter()
        try:
            models = await self._backend.list_models(request_id, context.time_remaining())
        except ProxyError as exc:
            await _abort(context, exc, started)
        return llm_pb2.ListModelsResponse(
            models=[llm_pb2.ModelInfo(id=m.id, owned_by=m.owned_by, instruct=m.instruct) for m in models]
        )

    def _done(self, started: float, completion: Completion, context: grpc.aio.ServicerContext) -> None:
        # The caller's Server-Timing: this tier's time with the backend's, and the backend's own figures.
        timing = format_timing({"proxy": (time.perf_counter() - started) * 1000} | dict(completion.timing))
        context.set_trailing_metadata(((METADATA_KEY, timing),))
        self._tokens.count(completion.input_tokens, completion.output_tokens)
        log.info("generation ok", extra={"ms": _ms_since(started), "output_tokens": completion.output_tokens})


async def _abort(context: grpc.aio.ServicerContext, exc: ProxyError, started: float) -> NoReturn:
    cause = repr(exc.__cause__) if exc.__cause__ else None
    log.warning(
        "generation failed",
        extra={"code": exc.code.name, "details": exc.details, "cause": cause, "ms": _ms_since(started)},
    )
    retry_after = (("retry-after", exc.retry_after),) if exc.retry_after else ()
    context.set_trailing_metadata((ORIGIN_TRAILER, NO_RETRY, *retry_after))
    await context.abort(exc.code, exc.details)
    raise AssertionError("context.abort raises")


def _summary(completion: Completion, request_id: str) -> llm_pb2.GenerationSummary:
    return llm_pb2.GenerationSummary(
        model=completion.model,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        finish_reason=completion.finish_reason,
        request_id=request_id,
    )


WATCH_REFRESH_MIN_S = 1.0  # an open Watch looks at the backend's health this often at most


class BackendHealth(health_aio.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1 whose answer for the server and LlmService is SERVING only while the backend answers.

    The backend is probed at most once per `interval_s`: checks in between get the last probe's answer, and
    checks during a probe share it, so no rate of checks costs the backend more than one probe per interval.
    At most `max_watches` Watch streams are open at once.
    """

    def __init__(self, backend: Backend, interval_s: float = 0.0, max_watches: int = 100) -> None:
        super().__init__()
        self._backend = backend
        self._interval_s = interval_s
        self._max_watches = max_watches
        self._watches = 0
        self._probe: asyncio.Future[bool] | None = None
        self._probed_at = 0.0

    async def backend_serving(self) -> bool:
        """Whether the backend answered the latest probe; probes again once `interval_s` has passed since it began."""
        probe = self._probe
        if probe is None or (probe.done() and time.monotonic() - self._probed_at >= self._interval_s):
            self._probed_at = time.monotonic()
            probe = self._probe = asyncio.ensure_future(self._backend.reachable())
        return await asyncio.shield(probe)  # a check whose caller gives up leaves the probe to the others

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        """Probe the backend (or take the latest probe's answer), record the result, then answer as the stock
        servicer does."""
        if request.service in ("", SERVICE_NAME):
            await self._refresh()
        return await super().Check(request, context)  # type: ignore[no-any-return,unused-ignore]

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> None:
        """The stock servicer's Watch, refused with RESOURCE_EXHAUSTED beyond `max_watches` open at once: a watch
        holds its stream (and a condition per service name the caller picks) until the caller leaves, and health
        checking is open to anyone who reaches the port."""
        if self._watches >= self._max_watches:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{self._max_watches} health watches are open")
        self._watches += 1
        refreshing = None
        try:
            if request.service in ("", SERVICE_NAME):  # the backend's health, probed while the watch is open
                await self._refresh()
                refreshing = asyncio.ensure_future(self._keep_refreshing())
            await super().Watch(request, context)
        finally:
            self._watches -= 1
            if refreshing:
                refreshing.cancel()

    async def _refresh(self) -> None:
        """Set the server's and LlmService's status from the backend's latest probe (probing if it is due)."""
        serving = await self.backend_serving()
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.set("", status)
        await self.set(SERVICE_NAME, status)

    async def _keep_refreshing(self) -> None:
        while True:
            await asyncio.sleep(max(self._interval_s, WATCH_REFRESH_MIN_S))
            await self._refresh()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
