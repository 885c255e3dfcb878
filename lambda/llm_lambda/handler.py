"""The Lambda entry points for the API Gateway REST API proxy integration: `lambda_handler` answers whole,
`stream_handler` writes the streaming integration's format (metadata, 8 NUL bytes, then the body as it comes).
`lambda_handler` also answers `GET /models`, the models the function serves (its allowlist).

`Function` holds both over a configuration; the module-level `lambda_handler` and `stream_handler` (the Handler
names of deploy/template.yaml) are those of the one `Function` built from the environment, as AWS runs them."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Generator, Iterator
from typing import Any

from llm_lambda.bedrock import Generation, StreamPieces, generate, generate_stream
from llm_lambda.config import FunctionConfig
from llm_lambda.models import chosen_model, served_models
from llm_lambda.tracing import invocation_span
from llm_wire.errors import BackendError
from llm_wire.jsonlog import function_logger, request_ids
from llm_wire.negotiation import allows
from llm_wire.request import BATCH_HEADER, MAX_BATCH_MS, QueryRequest, field_value, header, parse_event
from llm_wire.request_id import kept
from llm_wire.timing import HEADER as SERVER_TIMING
from llm_wire.timing import format_timing
from llm_wire.tools import ToolCallPiece

JSON, NDJSON = "application/json", "application/x-ndjson"  # what each handler answers
STREAM_SEPARATOR = b"\0" * 8  # between the streaming integration's metadata and the body

logger = function_logger("llm_lambda")


class Function:
    """The function's two entry points over one Bedrock client, built from `config` (or the given client: tests).
    One client per execution environment, reused by every invocation it serves."""

    def __init__(self, config: FunctionConfig, bedrock: Any = None) -> None:
        self.config = config
        self.bedrock = config.bedrock_client() if bedrock is None else bedrock

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Generate text for the proxy event's request; every failure becomes a problem+json answer."""
        aws_request_id = str(getattr(context, "aws_request_id", "-"))
        request_id = kept(header(event, "x-request-id")) or aws_request_id
        token = request_ids.set({"request_id": request_id, "aws_request_id": aws_request_id})
        try:
            with invocation_span(event, context, request_id):
                return self._answer(event, request_id)
        finally:
            request_ids.reset(token)

    def _answer(self, event: dict[str, Any], request_id: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            if isinstance(event, dict) and (event.get("httpMethod"), event.get("resource")) == ("GET", "/models"):
                return _ok(self._models(event), request_id)
            request = self._parse(event, JSON)
            model_id = chosen_model(self.config, request.model)
            generation = generate(self.bedrock, model_id, request)
        except Exception as exc:
            return _failed(exc).to_response(request_id)
        _log_answered(started, generation)
        answer = _ok(self._summary(generation, model_id, request_id), request_id)
        answer["headers"][SERVER_TIMING] = format_timing(_timing(started, generation))
        return answer

    def _models(self, event: dict[str, Any]) -> dict[str, Any]:
        """`GET /models`' answer, once its `Accept` allows JSON."""
        if not allows(field_value(event, "accept"), JSON):
            raise BackendError(406, f"accept: must allow {JSON}")
        return {"models": served_models(self.config)}

    def stream_handler(self, event: dict[str, Any], context: Any) -> Iterator[bytes]:
        """Generate text for the proxy event's request as Bedrock streams it: `text` lines of newline-delimited
        JSON, then one `done` or `error` line. A failure before the first byte is a whole problem+json answer."""
        aws_request_id = str(getattr(context, "aws_request_id", "-"))
        request_id = kept(header(event, "x-request-id")) or aws_request_id
        token = request_ids.set({"request_id": request_id, "aws_request_id": aws_request_id})
        try:
            with invocation_span(event, context, request_id):
                yield from self._stream(event, request_id)
        finally:
            request_ids.reset(token)

    def _stream(self, event: dict[str, Any], request_id: str) -> Iterator[bytes]:
        started = time.perf_counter()
        try:
            request = self._parse(event, NDJSON)
            batch_s = batch_ms(event) / 1000
            model_id = chosen_model(self.config, request.model)
            pieces = generate_stream(self.bedrock, model_id, request)
        except Exception as exc:
            answer = _failed(exc).to_response(request_id)
            yield _metadata(answer["statusCode"], answer["headers"]) + answer["body"].encode()
            return
        events = self._events(pieces, started, model_id, request_id)
        try:
            yield _metadata(200, {"Content-Type": NDJSON, "X-Request-ID": request_id})
            yield from (joined(events, batch_s) if batch_s else (_line(event) for event in events))
        finally:
            events.close()
            pieces.close()  # the caller went away, or we are done: Bedrock's stream is closed either way

    def _events(
        self, pieces: StreamPieces, started: float, model_id: str, request_id: str
    ) -> Generator[dict[str, Any]]:
        """The stream's events, one a piece Bedrock streams; the last a `done` or `error` event."""
        try:
            for piece in pieces:
                if isinstance(piece, Generation):
                    _log_answered(started, piece)
                    summary = self._summary(piece, model_id, request_id)
                    yield {"type": "done"} | summary | {"timing": _timing(started, piece)}
                elif isinstance(piece, ToolCallPiece):
                    fields = {key: value for key, value in dataclasses.asdict(piece).items() if value != ""}
                    yield {"type": "tool_call"} | fields
                else:
                    yield {"type": "text", "text": piece}
        except Exception as exc:
            failure = _failed(exc)
            yield {"type": "error", "status": failure.status, "detail": failure.detail}

    def _parse(self, event: dict[str, Any], answers: str) -> QueryRequest:
        """The event's request, once its `Accept` allows `answers`, what the function will answer with (API
        Gateway passes the header through a proxy integration, so the function is the one to refuse it, as in
        AWS)."""
        request = parse_event(event)
        if not allows(field_value(event, "accept"), answers):
            raise BackendError(406, f"accept: must allow {answers}")
        text: dict[str, Any] = {}
        if self.config.log_prompts:
            text = {"prompt": request.prompt} if request.prompt is not None else {"messages": request.messages}
        shape: dict[str, Any] = {"turns": len(request.messages)} if request.messages else {}
        shape |= {"model": request.model} if request.model else {}
        logger.info("invoking model", extra={"max_tokens": request.max_tokens, "chars": request.chars} | shape | text)
        return request

    def _summary(self, generation: Generation, model_id: str, request_id: str) -> dict[str, Any]:
        summary = {
            "text": generation.text,
            "model": model_id,
            "input_tokens": generation.input_tokens,
            "output_tokens": generation.output_tokens,
            "finish_reason": generation.finish_reason,
            "request_id": request_id,
        }
        if generation.tool_calls:
            summary["tool_calls"] = [dataclasses.asdict(call) for call in generation.tool_calls]
        return summary


@functools.cache
def aws_function() -> Function:
    """The one `Function` of this execution environment, configured by its environment variables (read once)."""
    return Function(FunctionConfig.from_environ(os.environ))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS's entry point for QueryFunction (see `Function.lambda_handler`)."""
    return aws_function().lambda_handler(event, context)


def stream_handler(event: dict[str, Any], context: Any) -> Iterator[bytes]:
    """AWS's entry point for QueryStreamFunction (see `Function.stream_handler`)."""
    return aws_function().stream_handler(event, context)


# In AWS (the Runtime API is there), the client is built now, in the init phase, which runs on a full CPU before
# the first invocation and is not counted in its duration. Anywhere else (the local cloud, the tests) importing
# this module builds nothing and reads no environment: they build their own `Function` from a `FunctionConfig`,
# and the entry points above build the environment's on their first call.
if "AWS_LAMBDA_RUNTIME_API" in os.environ:
    aws_function()


def batch_ms(event: dict[str, Any]) -> int:
    """The `X-Batch-Ms` header's milliseconds (specs/backend.yaml), 0 without it; a 400 naming it otherwise."""
    headers = event.get("headers")
    sent = headers.items() if isinstance(headers, dict) else ()
    value = next((v for k, v in sent if isinstance(k, str) and k.lower() == BATCH_HEADER.lower()), None)
    if value is None:
        return 0
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and int(value) <= MAX_BATCH_MS):
        raise BackendError(400, f"{BATCH_HEADER}: an integer from 0 to {MAX_BATCH_MS}")
    return int(value)


def joined(events: Generator[dict[str, Any]], batch_s: float) -> Iterator[bytes]:
    """`events` as lines, those made within `batch_s` of the last write held and written with the next one, the last
    ones at the end: fewer writes, and fewer pieces for every tier after this one to pass on. A run of text events
    among those held is one line (its text is the text since the line before, as every text line's is). The first
    event goes at once (a stream's first token is not held). A caller's hang-up is seen at the next write, as
    without: closing this closes `events`, and so Bedrock's stream."""
    held: list[dict[str, Any]] = []
    written = float("-inf")
    try:
        for event in events:
            held.append(event)
            if (now := time.perf_counter()) - written >= batch_s:
                yield _lines(held)
                held.clear()
                written = now
        if held:
            yield _lines(held)
    finally:
        events.close()


def _lines(events: list[dict[str, Any]]) -> bytes:
    """The lines of `events`, each run of text events written as one."""
    lines: list[bytes] = []
    text: list[str] = []
    for event in events:
        if event["type"] == "text":
            text.append(event["text"])
            continue
        if text:
            lines.append(_line({"type": "text", "text": "".join(text)}))
            text = []
        lines.append(_line(event))
    if text:
        lines.append(_line({"type": "text", "text": "".join(text)}))
    return b"".join(lines)


def _failed(exc: Exception) -> BackendError:
    """Log a failure once and say what the caller sees of it."""
    if not isinstance(exc, BackendError):
        logger.error("unexpected failure", extra={"status": 502}, exc_info=exc)
        return BackendError(502, "the backend failed unexpectedly")
    log = logger.warning if exc.status < 500 else logger.error
    log("request failed", extra={"status": exc.status, "detail": exc.detail}, exc_info=exc.status >= 500)
    return exc


def _log_answered(started: float, generation: Generation) -> None:
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("answered", extra={"status": 200, "ms": elapsed_ms, "output_tokens": generation.output_tokens})


def _timing(started: float, generation: Generation) -> dict[str, float]:
    """How long the function took (`backend`), and the model within it (`model`, Bedrock's latency, if it said)."""
    timing = {"backend": round((time.perf_counter() - started) * 1000, 3)}
    return timing | ({} if generation.model_ms is None else {"model": generation.model_ms})


def _ok(body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """A 200 proxy response with `body` as JSON."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": JSON, "X-Request-ID": request_id},
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def _metadata(status: int, headers: dict[str, str]) -> bytes:
    return json.dumps({"statusCode": status, "headers": headers}).encode() + STREAM_SEPARATOR


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode() + b"\n"
