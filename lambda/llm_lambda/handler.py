"""The Lambda entry point: `lambda_handler(event, context)` for the API Gateway REST API proxy integration."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
from botocore.config import Config

from llm_lambda.bedrock import generate
from llm_lambda.errors import BackendError
from llm_lambda.jsonlog import function_logger, request_ids
from llm_lambda.request import parse_event

MODEL_ID = os.environ.get("BEDROCK_MODEL_ID", "amazon.titan-text-premier-v1:0")
LOG_PROMPTS = os.environ.get("LOG_PROMPTS", "false").strip().lower() in ("1", "true", "yes", "on")

logger = function_logger("llm_lambda")
# One client per execution environment, reused by every invocation it serves. Two attempts at most: the
# function's own timeout must cover both.
bedrock = boto3.client(
    "bedrock-runtime",
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    config=Config(
        connect_timeout=float(os.environ.get("BEDROCK_CONNECT_TIMEOUT_S", "3")),
        read_timeout=float(os.environ.get("BEDROCK_READ_TIMEOUT_S", "25")),
        retries={"mode": "standard", "max_attempts": 2},
    ),
)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Generate text for the proxy event's request; every failure becomes a problem+json answer."""
    aws_request_id = getattr(context, "aws_request_id", "-")
    request_id = _header(event, "x-request-id") or aws_request_id
    token = request_ids.set({"request_id": request_id, "aws_request_id": aws_request_id})
    try:
        return _answer(event, request_id)
    finally:
        request_ids.reset(token)


def _answer(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = parse_event(event)
        text: dict[str, Any] = {}
        if LOG_PROMPTS:
            text = {"prompt": request.prompt} if request.prompt is not None else {"messages": request.messages}
        shape = {"turns": len(request.messages)} if request.messages else {}
        logger.info("invoking model", extra={"max_tokens": request.max_tokens, "chars": request.chars} | shape | text)
        generation = generate(bedrock, MODEL_ID, request)
    except BackendError as exc:
        log = logger.warning if exc.status < 500 else logger.error
        log("request failed", extra={"status": exc.status, "detail": exc.detail}, exc_info=exc.status >= 500)
        return exc.to_response(request_id)
    except Exception:
        logger.exception("unexpected failure", extra={"status": 502})
        return BackendError(502, "the backend failed unexpectedly").to_response(request_id)
    body = {
        "text": generation.text,
        "model": MODEL_ID,
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
        "finish_reason": generation.finish_reason,
        "request_id": request_id,
    }
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("answered", extra={"status": 200, "ms": elapsed_ms, "output_tokens": generation.output_tokens})
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Request-ID": request_id},
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and value:
            return str(value)
    return None
