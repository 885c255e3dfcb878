"""The local Bedrock Runtime endpoint (ASGI): InvokeModel (Titan Text), Converse, their streams, and GET /ping."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from lambdallm import logs
from lambdallm.body import ClientGone, read_body
from lambdallm.disconnect import disconnected, until_disconnect
from lambdallm.local_cloud import bedrock_errors, converse, model_trace, titan
from lambdallm.local_cloud.bedrock_errors import BedrockError
from lambdallm.local_cloud.engines import Cancelled, Completion, GenerationRequest, PromptTooLong
from lambdallm.local_cloud.eventstream import Frames, exception_event
from lambdallm.local_cloud.metrics import CloudMetrics, bedrock_route
from lambdallm.local_cloud.models import ModelHost, ServedModel
from lambdallm.local_cloud.relay import ChunkedAnswer, batches
from lambdallm.local_cloud.scheduler import Overloaded, Scheduler
from lambdallm.metrics import Measured, TokenCounter, exposition

logger = logging.getLogger("lambdallm.local_cloud.bedrock")


def create_bedrock_app(host: ModelHost, metrics: CloudMetrics) -> ASGIApp:
    """The ASGI app of the local Bedrock Runtime for `host`, measured in `metrics`, which GET /metrics serves."""

    async def ping(request: Request) -> Response:
        status = 200 if host.loaded.is_set() else 503
        return JSONResponse({"status": "ready" if status == 200 else "loading"}, status)

    async def scrape(request: Request) -> Response:
        body, content_type = exposition(metrics.registry, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    def unary(parse: Parser, answer: Answer) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            request_id = _new_request_id()
            try:
                scheduler, (generation, context) = await _accept(host, request, parse)
                started, timeline = time.perf_counter(), model_trace.new_timeline()
                # A client gone while its request is queued or generating: the request is dropped.
                job = scheduler.generate(generation, timeline=timeline)
                completion = await until_disconnect(job, disconnected(request.receive))
            except FAILURES as exc:
                return bedrock_error(exc).to_response(request_id)
            except ClientGone:
                return Response(status_code=499)  # nobody reads it: the caller has gone (nginx's code, logged)
            _log(completion, started, metrics.tokens)
            model_trace.record(timeline, unquote(request.path_params["model_id"]), completion, request_id)
            body, headers = answer(completion, _ms_since(started), context)
            return JSONResponse(body, headers={"x-amzn-RequestId": request_id, **headers})

        return call

    def streaming(
        parse: Parser, frames: Callable[[Any], Frames]
    ) -> Callable[[Request], Awaitable[Response | ChunkedAnswer]]:
        async def stream(request: Request) -> Response | ChunkedAnswer:
            request_id = _new_request_id()
            try:
                scheduler, (generation, context) = await _accept(host, request, parse)
                scheduler.check_room()
            except FAILURES as exc:
                return bedrock_error(exc).to_response(request_id)
            except ClientGone:
                return Response(status_code=499)
            headers = {"X-Amzn-Bedrock-Content-Type": "application/json", "x-amzn-RequestId": request_id}
            traced = (unquote(request.path_params["model_id"]), request_id)
            return ChunkedAnswer(
                _stream(scheduler, generation, frames(context), metrics.tokens, traced),
                "application/vnd.amazon.eventstream",
                headers,
            )

        return stream

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        name = {404: "UnknownOperationException", 405: "UnknownOperationException"}.get(
            status, "InternalServerException"
        )
        return BedrockError(status, name, f"{request.method} {request.url.path} is not an operation").to_response("-")

    operations = {
        "invoke": unary(_titan_request, _titan_answer),
        "invoke-with-response-stream": streaming(_titan_request, lambda _: titan.FRAMES),
        "converse": unary(_converse_request, _converse_answer),
        "converse-stream": streaming(_converse_request, converse.frames),
    }
    routes = [Route("/ping", ping, methods=["GET"]), Route("/metrics", scrape, methods=["GET"])]
    routes += [Route(f"/model/{{model_id:path}}/{name}", call, methods=["POST"]) for name, call in operations.items()]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    # Starlette answers `/ping/` with a redirect whose Location it builds from the Host header: not an operation.
    app.router.redirect_slashes = False
    return Measured(app, metrics.bedrock, bedrock_route)


FAILURES = (BedrockError, Overloaded, PromptTooLong)
# (body, model id, the model served) -> the generation, and what the answer needs to know of the request
Parser = Callable[[bytes, str, ServedModel], tuple[GenerationRequest, Any]]
# (completion, ms, the parser's context) -> body, headers
Answer = Callable[[Completion, int, Any], tuple[dict[str, Any], dict[str, str]]]


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
        return bedrock_errors.validation(str(exc))
    return exc


async def _accept(host: ModelHost, request: Request, parse: Parser) -> tuple[Scheduler, tuple[GenerationRequest, Any]]:
    model_id, model = host.resolve(unquote(request.path_params["model_id"]))
    length = request.headers.get("content-length", "")
    if (body := await read_body(request.receive, bedrock_errors.MAX_BODY_BYTES, length)) is None:
        raise bedrock_errors.too_large()
    return model.scheduler, parse(body, model_id, model)


def _titan_request(body: bytes, model_id: str, model: ServedModel) -> tuple[GenerationRequest, None]:
    """A Titan Text body; for an instruction-tuned model, its inputText as one user turn of the model's chat template
    (Titan Text Premier follows an instruction given as inputText; an instruct model fed it raw ends at once)."""
    request = titan.parse_request(body, model_id)
    if not model.instruct:
        return request, None
    prompt = model.chat_template.instruction(request.prompt)
    return dataclasses.replace(request, prompt=prompt, parse_special=True), None


def _converse_request(body: bytes, model_id: str, model: ServedModel) -> tuple[GenerationRequest, Any]:
    request = converse.parse_request(body, model_id, model.chat_template, model.grammars, model.continues)
    return request.generation, request


def _titan_answer(completion: Completion, latency_ms: int, _: None) -> tuple[dict[str, Any], dict[str, str]]:
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(completion.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(completion.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
    }
    return titan.answer(completion), headers


def _converse_answer(
    completion: Completion, latency_ms: int, request: converse.ConverseRequest
) -> tuple[dict[str, Any], dict[str, str]]:
    return converse.answer(completion, latency_ms, request), {}


async def _stream(
    scheduler: Scheduler, request: GenerationRequest, frames: Frames, counter: TokenCounter, traced: tuple[str, str]
) -> AsyncGenerator[bytes]:
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()

    def emit(text: str, tokens: int) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, (text, tokens))

    started = time.perf_counter()
    first_byte: int | None = None
    timeline = model_trace.new_timeline()
    job = asyncio.ensure_future(scheduler.generate(request, emit, timeline))
    # Emits are scheduled on the loop before the job completes, so the end marker comes after every piece.
    job.add_done_callback(lambda _: pieces.put_nowait(None))
    tokens = 0
    try:
        if start := frames.start():
            yield b"".join(start)
        async for ready in batches(pieces):  # the pieces made since the last write, in one write
            first_byte = first_byte if first_byte is not None else _ms_since(started)
            tokens = ready[-1][1]
            yield b"".join(frames.piece(*item) for item in ready)
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
    latency = _ms_since(started)
    _log(completion, started, counter)
    model_trace.record(timeline, traced[0], completion, traced[1])
    yield b"".join(frames.end(completion, latency, latency if first_byte is None else first_byte))


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _log(completion: Completion, started: float, tokens: TokenCounter) -> None:
    tokens.count(completion.input_tokens, completion.output_tokens)
    extra: dict[str, Any] = {
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "reason": completion.reason,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    logger.info("generated", extra=extra)
