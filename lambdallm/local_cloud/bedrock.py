"""The local Bedrock Runtime endpoint (ASGI): Titan Text InvokeModel and its response stream, and GET /ping."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lambdallm import logs
from lambdallm.local_cloud import titan
from lambdallm.local_cloud.body import read_body
from lambdallm.local_cloud.engines import Cancelled, Completion, GenerationRequest, PromptTooLong
from lambdallm.local_cloud.eventstream import chunk_event, exception_event
from lambdallm.local_cloud.scheduler import Overloaded, Scheduler
from lambdallm.local_cloud.titan import BedrockError

T = TypeVar("T")
logger = logging.getLogger("lambdallm.local_cloud.bedrock")


@dataclass
class ModelHost:
    """What the endpoint serves: the model id, and the scheduler once the model has loaded."""

    model_id: str
    scheduler: Scheduler | None = None
    loaded: asyncio.Event = field(default_factory=asyncio.Event)

    def ready(self) -> Scheduler:
        """The scheduler, or ServiceUnavailableException while the model is loading."""
        if self.scheduler is None:
            raise BedrockError(503, "ServiceUnavailableException", "The model is still loading")
        return self.scheduler


def create_bedrock_app(host: ModelHost) -> Starlette:
    """The ASGI app of the local Bedrock Runtime for `host`."""

    async def ping(request: Request) -> Response:
        status = 200 if host.scheduler is not None else 503
        return JSONResponse({"status": "ready" if status == 200 else "loading"}, status)

    async def invoke(request: Request) -> Response:
        request_id = _new_request_id()
        try:
            scheduler, generation = await _accept(host, request)
            started = time.perf_counter()
            completion = await _unless_disconnected(request, scheduler.generate(generation))
        except FAILURES as exc:
            return bedrock_error(exc).to_response(request_id)
        _log(completion, started)
        return JSONResponse(
            titan.answer(completion),
            headers={
                "x-amzn-RequestId": request_id,
                "X-Amzn-Bedrock-Input-Token-Count": str(completion.input_tokens),
                "X-Amzn-Bedrock-Output-Token-Count": str(completion.output_tokens),
                "X-Amzn-Bedrock-Invocation-Latency": str(int((time.perf_counter() - started) * 1000)),
            },
        )

    async def invoke_stream(request: Request) -> Response:
        request_id = _new_request_id()
        try:
            scheduler, generation = await _accept(host, request)
            scheduler.check_room()
        except FAILURES as exc:
            return bedrock_error(exc).to_response(request_id)
        headers = {"X-Amzn-Bedrock-Content-Type": "application/json", "x-amzn-RequestId": request_id}
        return StreamingResponse(
            _stream(scheduler, generation), media_type="application/vnd.amazon.eventstream", headers=headers
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        name = {404: "UnknownOperationException", 405: "UnknownOperationException"}.get(
            status, "InternalServerException"
        )
        return BedrockError(status, name, f"{request.method} {request.url.path} is not an operation").to_response("-")

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/model/{model_id:path}/invoke", invoke, methods=["POST"]),
        Route("/model/{model_id:path}/invoke-with-response-stream", invoke_stream, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


FAILURES = (BedrockError, Overloaded, PromptTooLong)


def _new_request_id() -> str:
    """Bedrock's x-amzn-RequestId for this request, also set for every log line the request writes
    (each request runs in its own task, so the id does not leak into the next one)."""
    request_id = str(uuid.uuid4())
    logs.request_id.set(request_id)
    return request_id


def bedrock_error(exc: BedrockError | Overloaded | PromptTooLong) -> BedrockError:
    """The endpoint's one table from its own failures to the errors Bedrock Runtime reports."""
    if isinstance(exc, Overloaded):
        return BedrockError(429, "ThrottlingException", f"Too many requests, please wait: {exc}")
    if isinstance(exc, PromptTooLong):
        return titan.validation(str(exc))
    return exc


async def _accept(host: ModelHost, request: Request) -> tuple[Scheduler, GenerationRequest]:
    model = titan.resolve_model(unquote(request.path_params["model_id"]), host.model_id)
    scheduler = host.ready()
    if (body := await read_body(request, titan.MAX_BODY_BYTES)) is None:
        raise titan.too_large()
    return scheduler, titan.parse_request(body, model)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the HTTP client disconnects first (a queued request is then dropped)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            logger.info("client disconnected; request dropped")
        return await task
    finally:
        watcher.cancel()
        task.cancel()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _stream(scheduler: Scheduler, request: GenerationRequest) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()

    def emit(text: str, tokens: int) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, (text, tokens))

    started = time.perf_counter()
    first_byte: float | None = None
    job = asyncio.ensure_future(scheduler.generate(request, emit))
    # Emits are scheduled on the loop before the job completes, so the end marker comes after every piece.
    job.add_done_callback(lambda _: pieces.put_nowait(None))
    tokens = 0
    try:
        while (item := await pieces.get()) is not None:
            first_byte = first_byte or time.perf_counter()
            tokens = item[1]
            yield chunk_event(titan.stream_chunk(item[0], item[1], None, None))
        completion: Completion = job.result()
    except FAILURES as exc:
        error = bedrock_error(exc)
        yield exception_event(error.name[0].lower() + error.name[1:], error.message)  # the stream's spelling
        return
    except (Cancelled, asyncio.CancelledError):
        logger.info("client disconnected; generation stopped", extra={"output_tokens": tokens})
        raise
    except Exception:
        logger.exception("generation failed mid-stream")
        yield exception_event("modelStreamErrorException", "The model failed while generating")
        return
    finally:
        job.cancel()
    now = time.perf_counter()
    final = titan.stream_chunk("", completion.output_tokens, completion.input_tokens, completion.reason)
    final["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": completion.input_tokens,
        "outputTokenCount": completion.output_tokens,
        "invocationLatency": int((now - started) * 1000),
        "firstByteLatency": int(((first_byte or now) - started) * 1000),
    }
    _log(completion, started)
    yield chunk_event(final)


def _log(completion: Completion, started: float) -> None:
    extra: dict[str, Any] = {
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "reason": completion.reason,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    logger.info("generated", extra=extra)
