"""A scripted llm.v1.LlmService on a free loopback port: the REST tier's tests control every gRPC answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.rest.problems import ORIGIN_TRAILER

DEFAULT_MODEL = "amazon.titan-text-premier-v1:0"
BASE_MODEL = "google.gemma-3-270m"


@dataclass
class Failure:
    """A status the fake answers with (after `after` stream messages, for a stream)."""

    code: grpc.StatusCode
    details: str
    trailers: tuple[tuple[str, str], ...] = ()
    after: int = 0


@dataclass
class FakeLlmService(llm_pb2_grpc.LlmServiceServicer):  # type: ignore[misc]
    """Answers every generation with `pieces` (joined, for GenerateText) unless `failure` is set; lists `models`;
    an unknown model is NOT_FOUND, as the backend answers it. `requests` holds every LlmQueryRequest seen."""

    pieces: list[str] = field(default_factory=lambda: ["Paris", " is", " the capital."])
    finish_reason: str = "stop"
    failure: Failure | None = None
    models: list[llm_pb2.ModelInfo] = field(
        default_factory=lambda: [
            llm_pb2.ModelInfo(id=DEFAULT_MODEL, owned_by="amazon", instruct=True),
            llm_pb2.ModelInfo(id=BASE_MODEL, owned_by="google", instruct=False),
        ]
    )
    requests: list[llm_pb2.LlmQueryRequest] = field(default_factory=list)
    # A stream waits on `gate` after its first piece; `cancelled` is set when its client cancels it.
    gate: asyncio.Event | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def _check(self, request: llm_pb2.LlmQueryRequest, context: Any) -> str:
        self.requests.append(request)
        model = request.model or self.models[0].id
        if model not in {m.id for m in self.models}:
            served = ", ".join(m.id for m in self.models)
            context.set_trailing_metadata((ORIGIN_TRAILER,))  # the proxy wrote it for the client
            await context.abort(grpc.StatusCode.NOT_FOUND, f"model: {model} is not served (served: {served})")
        if self.failure is not None and self.failure.after == 0:
            context.set_trailing_metadata(self.failure.trailers)
            await context.abort(self.failure.code, self.failure.details)
        return model

    def _summary(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "input_tokens": 7,
            "output_tokens": len(self.pieces),
            "finish_reason": self.finish_reason,
        }

    async def GenerateText(self, request: llm_pb2.LlmQueryRequest, context: Any) -> llm_pb2.LlmQueryResponse:
        model = await self._check(request, context)
        return llm_pb2.LlmQueryResponse(text="".join(self.pieces), **self._summary(model))

    async def GenerateTextStream(
        self, request: llm_pb2.GenerateTextStreamRequest, context: Any
    ) -> AsyncIterator[llm_pb2.GenerateTextStreamResponse]:
        model = await self._check(request.query, context)
        for number, piece in enumerate(self.pieces, 1):
            yield llm_pb2.GenerateTextStreamResponse(text=piece)
            if self.failure is not None and number == self.failure.after:
                await context.abort(self.failure.code, self.failure.details)
            if self.gate is not None and number == 1:
                try:
                    await self.gate.wait()
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise
        yield llm_pb2.GenerateTextStreamResponse(summary=llm_pb2.GenerationSummary(**self._summary(model)))

    async def ListModels(self, request: llm_pb2.ListModelsRequest, context: Any) -> llm_pb2.ListModelsResponse:
        if self.failure is not None:
            await context.abort(self.failure.code, self.failure.details)
        return llm_pb2.ListModelsResponse(models=self.models)


@asynccontextmanager
async def grpc_server(register: Callable[[grpc.aio.Server], object]) -> AsyncIterator[str]:
    """A gRPC server on a free loopback port with the services `register` adds to it; yields its target."""
    server = grpc.aio.server()
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def fake_llm_service(service: FakeLlmService) -> AbstractAsyncContextManager[str]:
    """Serve `service` on a free loopback port; yields its target."""
    return grpc_server(lambda server: llm_pb2_grpc.add_LlmServiceServicer_to_server(service, server))
