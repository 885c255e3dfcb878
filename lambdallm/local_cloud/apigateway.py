"""The local API Gateway (ASGI): REST API proxy events from specs/backend.yaml's routes, run through the Lambda.

Each route invokes the function its integration names; a route whose integration streams (response transfer
mode STREAM) invokes it in streaming mode and forwards the body as the function writes it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from llm_lambda import strict_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from lambdallm import logs
from lambdallm.http_protocol import answered_by_server
from lambdallm.local_cloud.body import ClientGone, read_body
from lambdallm.local_cloud.sigv4 import SignatureError, SignedRequest, SigV4Verifier
from lambdallm.schema_errors import first_error
from lambdallm.shipped import shipped

SPEC = shipped("specs") / "backend.yaml"
# A Lambda proxy integration carries at most Lambda's synchronous invocation payload (6 MB); API Gateway
# itself would take 10 MB, but the function could not be invoked with it.
MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_INTEGRATION_TIMEOUT_MS = 29000
Handler = Callable[[dict[str, Any], Any], Any]  # a proxy response dict, or (streaming) an iterator of bytes
STREAM_SEPARATOR = b"\0" * 8  # between a streamed response's metadata and its body
# Lambda's concurrency: each invocation in flight holds one thread while the handler waits on Bedrock.
CONCURRENCY = 64
_FUNCTION = re.compile(r"\$\{(\w+)\.Arn\}")
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


@dataclass(frozen=True)
class Route:
    """One method of one resource: its body's schema, the function its integration invokes, how, and how long
    API Gateway waits for it."""

    validator: jsonschema.Draft4Validator | None
    function: str
    streaming: bool
    timeout_s: float
    iam: bool = False  # the method requires AWS_IAM authorization (a security scheme of type awsSigv4)


class ApiGateway:
    """A REST API with Lambda proxy integrations: routes, body schemas and integrations (function, transfer mode,
    timeout) from the OpenAPI document; `timeout_s` is the functions' own timeout, `timeouts` overrides it for
    the functions it names (the streaming function may run longer, as in deploy/template.yaml).

    `functions` maps each function name an integration URI names (`${QueryFunction.Arn}`) to its handler. With a
    `verifier`, methods that require IAM authorization take only requests it finds signed, as in AWS; without
    one, every request goes in (as `sam local` lets them).
    """

    def __init__(
        self,
        functions: dict[str, Handler],
        timeout_s: float,
        spec: Path = SPEC,
        stage: str = "local",
        max_body_bytes: int = 0,
        timeouts: dict[str, float] | None = None,
        verifier: SigV4Verifier | None = None,
    ) -> None:
        self.functions, self.timeout_s, self.stage, self.verifier = functions, timeout_s, stage, verifier
        self.timeouts = timeouts or {}
        self.max_body_bytes = max_body_bytes or MAX_BODY_BYTES
        document = yaml.safe_load(spec.read_text())
        self.routes: dict[str, dict[str, Route]] = {}
        for path, operations in document["paths"].items():
            self.routes[path] = {}
            for method, operation in operations.items():
                self.routes[path][method.upper()] = _route(operation, document)
        self._executor = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="lambda")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        response: Any
        try:
            response = await self._handle(request, request_id)
        except ProblemError as exc:
            response = exc.to_response(request.headers.get("x-request-id") or request_id)
        except SignatureError as exc:
            response = _refusal(exc, request_id)
        except ClientGone:  # nobody reads it: the caller hung up mid-body, or was answered by the server (a 408)
            response = Response(status_code=answered_by_server(scope) or 499)
        logger.info(
            "%s %s %d",
            request.method,
            request.url.path,
            response.status_code,
            extra={"status": response.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)}
            | {"aws_request_id": request_id, "request_id": request.headers.get("x-request-id") or request_id},
        )
        await response(scope, receive, send)

    async def _handle(self, request: Request, request_id: str) -> Response | StreamedResponse:
        path = request.url.path
        if path not in self.routes:
            raise ProblemError(404, f"no resource at {path}")
        methods = self.routes[path]
        if request.method not in methods:
            raise ProblemError(405, f"{request.method} is not allowed on {path}", {"Allow": ", ".join(methods)})
        route = methods[request.method]
        if (body := await read_body(request, self.max_body_bytes)) is None:
            raise ProblemError(413, f"the request body exceeds {self.max_body_bytes} bytes")
        if route.iam and self.verifier is not None:
            self.verifier.verify(_signed_request(request, body))
        if route.validator is not None:
            _validate(route.validator, body)
        event = _proxy_event(request, body, path, request_id, self.stage)
        context = LambdaContext(
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.timeouts.get(route.function, self.timeout_s),
            function_name=route.function,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{route.function}",
        )
        token = logs.request_id.set(request.headers.get("x-request-id") or request_id)
        # Whichever ends first: the function's timeout, or the integration's (API Gateway stops waiting).
        timeout_s = min(self.timeouts.get(route.function, self.timeout_s), route.timeout_s)
        try:
            if route.streaming:
                stream = self._invoke_streaming(self.functions[route.function], event, context, request_id)
                return await asyncio.wait_for(stream, timeout_s)
            loop = asyncio.get_running_loop()
            invocation = loop.run_in_executor(self._executor, self.functions[route.function], event, context)
            result = await asyncio.wait_for(invocation, timeout_s)
        except TimeoutError as exc:
            raise ProblemError(504, f"the function did not answer within {timeout_s:g} s") from exc
        except ProblemError:
            raise
        except Exception as exc:
            logger.exception("the function raised")
            raise ProblemError(502, "the function failed (internal server error)") from exc
        finally:
            logs.request_id.reset(token)
        return _to_response(result, request_id)

    async def _invoke_streaming(
        self, handler: Handler, event: dict[str, Any], context: LambdaContext, request_id: str
    ) -> StreamedResponse:
        """Run the handler in a Lambda thread; answer once its metadata is written, then relay its body."""
        stream = StreamedResponse(asyncio.get_running_loop(), context.deadline, request_id)
        self._executor.submit(stream.pump, handler, event, context)
        try:
            await stream.read_metadata()
        except BaseException:
            stream.stop()  # timed out or failed before its metadata: the function stops at its next piece
            raise
        return stream

    def close(self) -> None:
        """Stop accepting invocations; running ones finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class StreamedResponse:
    """A streaming function's answer: its metadata (status, headers), then its body relayed as it comes.

    The handler runs in a Lambda thread (`pump`); its pieces reach the event loop through a queue. A client that
    hangs up, or the function's timeout, makes `pump` close the handler at its next piece.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, request_id: str) -> None:
        self._loop, self._deadline, self._request_id = loop, deadline, request_id
        self._pieces: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._stop = threading.Event()
        self._head = b""
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []

    def pump(self, handler: Handler, event: dict[str, Any], context: LambdaContext) -> None:
        """In a Lambda thread: run the handler, passing each piece on until it ends or must stop."""
        body: Iterator[bytes] | None = None
        try:
            body = iter(handler(event, context))
            for piece in body:
                self._put(bytes(piece))
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    break
            self._put(None)
        except Exception as exc:
            logger.exception("the function raised")
            self._put(exc)
        finally:
            close = getattr(body, "close", None)
            if close:
                close()

    def stop(self) -> None:
        """Make `pump` close the handler at its next piece."""
        self._stop.set()

    def _put(self, item: bytes | BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self._pieces.put_nowait, item)

    async def read_metadata(self) -> None:
        """Wait for the metadata and the 8 NUL bytes after it; a function that fails before is a 502."""
        while STREAM_SEPARATOR not in self._head:
            piece = await self._pieces.get()
            if not isinstance(piece, bytes):
                self._stop.set()
                raise ProblemError(502, "the function failed before it wrote its response")
            self._head += piece
        metadata, _, self._head = self._head.partition(STREAM_SEPARATOR)
        try:
            answer = json.loads(metadata)
            self.status_code = int(answer["statusCode"])
            headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            self._stop.set()
            raise ProblemError(502, "the function wrote malformed response metadata") from exc
        headers |= {"x-amzn-RequestId": self._request_id}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
            piece: bytes | BaseException | None = self._head
            while isinstance(piece, bytes):
                if piece:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                piece = await self._pieces.get()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._stop.set()
            watcher.cancel()

    async def _watch_disconnect(self, receive: Receive) -> None:
        message: Message = {}
        while message.get("type") != "http.disconnect":
            message = await receive()
        logger.info("client disconnected; closing the function's stream")
        self._stop.set()


def _route(operation: dict[str, Any], document: dict[str, Any]) -> Route:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    validator = None
    if "schema" in schema:
        # API Gateway models are JSON Schema draft 4; resolve refs against the whole document.
        resolved = {**schema["schema"], "components": document.get("components", {})}
        validator = jsonschema.Draft4Validator(resolved)
    integration = operation.get("x-amazon-apigateway-integration", {})
    uri = integration.get("uri", {})
    found = _FUNCTION.search(uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri))
    streaming = integration.get("responseTransferMode") == "STREAM"
    timeout_s = integration.get("timeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS) / 1000
    schemes = document.get("components", {}).get("securitySchemes", {})
    iam = any(
        schemes.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4"
        for requirement in operation.get("security", document.get("security", []))
        for name in requirement
    )
    return Route(validator, found.group(1) if found else "QueryFunction", streaming, timeout_s, iam)


def _signed_request(request: Request, body: bytes) -> SignedRequest:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    return SignedRequest(
        request.method, raw_path.decode("latin-1"), request.scope.get("query_string", b"").decode(), headers, body
    )


def _refusal(error: SignatureError, request_id: str) -> Response:
    """API Gateway's own 403 for a request it could not authenticate: `{"message": ...}` and its error type."""
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.error_type}
    return Response(json.dumps({"message": error.message}), 403, headers, media_type="application/json")


def _validate(validator: jsonschema.Draft4Validator, body: bytes) -> None:
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise ProblemError(400, exc.detail) from exc
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
