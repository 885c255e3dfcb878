"""The local API Gateway (ASGI): REST API proxy events from specs/backend.yaml's routes, run through the Lambda."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lambdallm import logs
from lambdallm.local_cloud.body import read_body
from lambdallm.schema_errors import first_error

SPEC = Path(__file__).resolve().parents[2] / "specs" / "backend.yaml"
# A Lambda proxy integration carries at most Lambda's synchronous invocation payload (6 MB); API Gateway
# itself would take 10 MB, but the function could not be invoked with it.
MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_INTEGRATION_TIMEOUT_MS = 29000
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
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


class ProblemError(Exception):
    """A request the gateway answers itself with a problem+json, before or instead of the function."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}

    def to_response(self, request_id: str) -> Response:
        """The problem+json answer."""
        body = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "request_id": request_id,
        }
        headers = {"X-Request-ID": request_id, "x-amzn-RequestId": request_id} | self.headers
        return Response(json.dumps(body), self.status, headers, media_type="application/problem+json")


class ApiGateway:
    """A REST API with Lambda proxy integration: routes, body schemas and the integration timeout come from
    the OpenAPI document; `timeout_s` is the function's own timeout."""

    def __init__(
        self, handler: Handler, timeout_s: float, spec: Path = SPEC, stage: str = "local", max_body_bytes: int = 0
    ) -> None:
        self.handler, self.timeout_s, self.stage = handler, timeout_s, stage
        self.max_body_bytes = max_body_bytes or MAX_BODY_BYTES
        document = yaml.safe_load(spec.read_text())
        self.routes: dict[str, dict[str, jsonschema.Draft4Validator | None]] = {}
        self.integration_timeout_s: dict[tuple[str, str], float] = {}
        for path, operations in document["paths"].items():
            self.routes[path] = {}
            for method, operation in operations.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                timeout_ms = integration.get("timeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS)
                self.integration_timeout_s[path, method.upper()] = timeout_ms / 1000
                schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                validator = None
                if "schema" in schema:
                    # API Gateway models are JSON Schema draft 4; resolve refs against the whole document.
                    resolved = {**schema["schema"], "components": document.get("components", {})}
                    validator = jsonschema.Draft4Validator(resolved)
                self.routes[path][method.upper()] = validator
        # Lambda's concurrency: each in-flight invocation holds one thread while the handler waits on Bedrock.
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="lambda")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            response = await self._handle(request, request_id)
        except ProblemError as exc:
            response = exc.to_response(request.headers.get("x-request-id") or request_id)
        logger.info(
            "%s %s %d",
            request.method,
            request.url.path,
            response.status_code,
            extra={"status": response.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)}
            | {"aws_request_id": request_id, "request_id": request.headers.get("x-request-id") or request_id},
        )
        await response(scope, receive, send)

    async def _handle(self, request: Request, request_id: str) -> Response:
        path = request.url.path
        if path not in self.routes:
            raise ProblemError(404, f"no resource at {path}")
        methods = self.routes[path]
        if request.method not in methods:
            raise ProblemError(405, f"{request.method} is not allowed on {path}", {"Allow": ", ".join(methods)})
        if (body := await read_body(request, self.max_body_bytes)) is None:
            raise ProblemError(413, f"the request body exceeds {self.max_body_bytes} bytes")
        if (validator := methods[request.method]) is not None:
            _validate(validator, body)
        event = _proxy_event(request, body, path, request_id, self.stage)
        context = LambdaContext(aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + self.timeout_s)
        token = logs.request_id.set(request.headers.get("x-request-id") or request_id)
        # Whichever ends first: the function's timeout, or the integration's (API Gateway stops waiting).
        timeout_s = min(self.timeout_s, self.integration_timeout_s[path, request.method])
        try:
            loop = asyncio.get_running_loop()
            invocation = loop.run_in_executor(self._executor, self.handler, event, context)
            result = await asyncio.wait_for(invocation, timeout_s)
        except TimeoutError as exc:
            raise ProblemError(504, f"the function did not answer within {timeout_s:g} s") from exc
        except Exception as exc:
            logger.exception("the function raised")
            raise ProblemError(502, "the function failed (internal server error)") from exc
        finally:
            logs.request_id.reset(token)
        return _to_response(result, request_id)

    def close(self) -> None:
        """Stop accepting invocations; running ones finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _validate(validator: jsonschema.Draft4Validator, body: bytes) -> None:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProblemError(400, "the request body is not valid JSON") from exc
    if (detail := first_error(validator.iter_errors(data))) is not None:
        raise ProblemError(400, detail)


def _proxy_event(request: Request, body: bytes, path: str, request_id: str, stage: str) -> dict[str, Any]:
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


def _to_response(result: Any, request_id: str) -> Response:
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
