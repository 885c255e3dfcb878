"""The Lambda entry points for the API Gateway REST API proxy integration: `lambda_handler` answers whole,
`stream_handler` writes the streaming integration's format (metadata, 8 NUL bytes, then the body as it comes)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config

from llm_lambda.bedrock import Generation, generate, generate_stream
from llm_lambda.errors import BackendError
from llm_lambda.jsonlog import function_logger, request_ids
from llm_lambda.negotiation import allows
from llm_lambda.request import QueryRequest, field_value, header, parse_event

MODEL_ID = os.environ.get("BEDROCK_MODEL_ID", "amazon.titan-text-premier-v1:0")
JSON, NDJSON = "application/json", "application/x-ndjson"  # what each handler answers
LOG_PROMPTS = os.environ.get("LOG_PROMPTS", "false").strip().lower() in ("1", "true", "yes", "on")

logger = function_logger("llm_lambda")
# One attempt: a generation that timed out has been billed and would most likely time out again, and it would
# run after API Gateway already answered 504. Throttling and "not ready" go back to the caller as 429/503 with
# a reason, and the client retries, as with Bedrock and the major LLM APIs. The function's timeout covers
# connect + read (see docs/configuration.md, "Time budget").
BEDROCK_ATTEMPTS = 1
# One client per execution environment, reused by every invocation it serves. In AWS an environment runs one
# invocation at a time; a host that runs several at once through this module (the local cloud runs up to 64)
# says how many, so that each keeps its connection instead of opening a new one per call.
bedrock = boto3.client(
    "bedrock-runtime",
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    config=Config(
        connect_timeout=float(os.environ.get("BEDROCK_CONNECT_TIMEOUT_S", "2")),
        read_timeout=float(os.environ.get("BEDROCK_READ_TIMEOUT_S", "25")),
        retries={"mode": "standard", "total_max_attempts": BEDROCK_ATTEMPTS},
        max_pool_connections=int(os.environ.get("BEDROCK_MAX_POOL_CONNECTIONS", "10")),
    ),
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Generate text for the proxy event's request; every failure becomes a problem+json answer."""
    aws_request_id = str(getattr(context, "aws_request_id", "-"))
    request_id = header(event, "x-request-id") or aws_request_id
    token = request_ids.set({"request_id": request_id, "aws_request_id": aws_request_id})
    try:
        return _answer(event, request_id)
    finally:
        request_ids.reset(token)


def _answer(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = _parse(event, JSON)
        generation = generate(bedrock, MODEL_ID, request)
    except Exception as exc:
        return _failed(exc).to_response(request_id)
    _log_answered(started, generation)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": JSON, "X-Request-ID": request_id},
        "body": json.dumps(_summary(generation, request_id), ensure_ascii=False),
        "isBase64Encoded": False,
    }


STREAM_SEPARATOR = b"\0" * 8  # between the streaming integration's metadata and the body


def stream_handler(event: dict[str, Any], context: Any) -> Iterator[bytes]:
    """Generate text for the proxy event's request as Bedrock streams it: `text` lines of newline-delimited
    JSON, then one `done` or `error` line. A failure before the first byte is a whole problem+json answer."""
    aws_request_id = str(getattr(context, "aws_request_id", "-"))
    request_id = header(event, "x-request-id") or aws_request_id
    token = request_ids.set({"request_id": request_id, "aws_request_id": aws_request_id})
    try:
        yield from _stream(event, request_id)
    finally:
        request_ids.reset(token)


def _stream(event: dict[str, Any], request_id: str) -> Iterator[bytes]:
    started = time.perf_counter()
    try:
        pieces = generate_stream(bedrock, MODEL_ID, _parse(event, NDJSON))
    except Exception as exc:
        answer = _failed(exc).to_response(request_id)
        yield _metadata(answer["statusCode"], answer["headers"]) + answer["body"].encode()
        return
    try:
        yield _metadata(200, {"Content-Type": NDJSON, "X-Request-ID": request_id})
        for piece in pieces:
            if isinstance(piece, Generation):
                _log_answered(started, piece)
                yield _line({"type": "done"} | _summary(piece, request_id))
            else:
                yield _line({"type": "text", "text": piece})
    except Exception as exc:
        failure = _failed(exc)
        yield _line({"type": "error", "status": failure.status, "detail": failure.detail})
    finally:
        pieces.close()  # the caller went away, or we are done: Bedrock's stream is closed either way


def _parse(event: dict[str, Any], answers: str) -> QueryRequest:
    """The event's request, once its `Accept` allows `answers`, what the function will answer with (API Gateway
    passes the header through a proxy integration, so the function is the one to refuse it, as in AWS)."""
    request = parse_event(event)
    if not allows(field_value(event, "accept"), answers):
        raise BackendError(406, f"accept: must allow {answers}")
    text: dict[str, Any] = {}
    if LOG_PROMPTS:
        text = {"prompt": request.prompt} if request.prompt is not None else {"messages": request.messages}
    shape = {"turns": len(request.messages)} if request.messages else {}
    logger.info("invoking model", extra={"max_tokens": request.max_tokens, "chars": request.chars} | shape | text)
    return request


def _failed(exc: Exception) -> BackendError:
    """Log a failure once and say what the caller sees of it."""
    if not isinstance(exc, BackendError):
        logger.error("unexpected failure", extra={"status": 502}, exc_info=exc)
        return BackendError(502, "the backend failed unexpectedly")
    log = logger.warning if exc.status < 500 else logger.error
    log("request failed", extra={"status": exc.status, "detail": exc.detail}, exc_info=exc.status >= 500)
    return exc


def _summary(generation: Generation, request_id: str) -> dict[str, Any]:
    return {
        "text": generation.text,
        "model": MODEL_ID,
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
        "finish_reason": generation.finish_reason,
        "request_id": request_id,
    }


def _log_answered(started: float, generation: Generation) -> None:
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("answered", extra={"status": 200, "ms": elapsed_ms, "output_tokens": generation.output_tokens})


def _metadata(status: int, headers: dict[str, str]) -> bytes:
    return json.dumps({"statusCode": status, "headers": headers}).encode() + STREAM_SEPARATOR


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode() + b"\n"
