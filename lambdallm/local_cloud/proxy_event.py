"""The Lambda proxy integration's two halves: the event and context a function is invoked with, and the
proxy response it returns read back into an HTTP answer."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lambdallm.local_cloud.gateway_errors import ProblemError

logger = logging.getLogger("lambdallm.local_cloud.apigateway")


@dataclass
class LambdaContext:
    """The Lambda context object the runtime passes to the handler."""

    aws_request_id: str
    deadline: float
    function_name: str = "QueryFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:QueryFunction"
    log_group_name: str = "/aws/lambda/QueryFunction"
    log_stream_name: str = field(default_factory=lambda: f"local/[$LATEST]{uuid.uuid4().hex}")

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def proxy_event(request: Request, body: bytes, path: str, request_id: str, stage: str) -> dict[str, Any]:
    """The REST API proxy event for `request` (its body already read) on the resource at `path`."""
    multi: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        multi.setdefault(key, []).append(value)
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    source_ip = request.client.host if request.client else "127.0.0.1"
    return {
        "resource": path,
        "path": path,
        "httpMethod": request.method,
        "headers": {key: values[-1] for key, values in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": stage,
            "resourcePath": path,
            "httpMethod": request.method,
            "path": f"/{stage}{path}",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": request.headers.get("user-agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def to_response(result: Any, request_id: str) -> Response:
    """The HTTP answer a function's proxy response describes; a malformed one is a 502."""
    try:
        status = int(result["statusCode"])
        body = result.get("body") or ""
        content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(key)] = ", ".join(str(v) for v in values)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        logger.error("malformed Lambda proxy response", extra={"result": repr(result)[:200]})
        raise ProblemError(502, "the function returned a malformed proxy response") from exc
    return Response(content, status, headers | {"x-amzn-RequestId": request_id})
