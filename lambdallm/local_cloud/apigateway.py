"""The local API Gateway (ASGI): REST API proxy events from specs/backend.yaml's routes, run through the Lambda.

Each route invokes the function its integration names; a route whose integration streams (response transfer
mode STREAM) invokes it in streaming mode and forwards the body as the function writes it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lambdallm import logs, tracing
from lambdallm.body import ClientGone, read_body
from lambdallm.http_protocol import answered_by_server
from lambdallm.local_cloud.gateway_errors import ProblemError, refusal
from lambdallm.local_cloud.proxy_event import LambdaContext, proxy_event, to_response
from lambdallm.local_cloud.routes import load_routes, validate
from lambdallm.local_cloud.sigv4 import SignatureError, SignedRequest, SigV4Verifier
from lambdallm.local_cloud.streaming_integration import Handler, StreamedResponse
from lambdallm.shipped import shipped
from llm_wire.request_id import kept

SPEC = shipped("specs") / "backend.yaml"
# A Lambda proxy integration carries at most Lambda's synchronous invocation payload (6 MB); API Gateway
# itself would take 10 MB, but the function could not be invoked with it.
MAX_BODY_BYTES = 6 * 1024 * 1024
# Lambda's concurrency: each invocation in flight holds one thread while the handler waits on Bedrock.
CONCURRENCY = 64
logger = logging.getLogger("lambdallm.local_cloud.apigateway")


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
        self.routes = load_routes(spec)
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
            response = exc.to_response(kept(request.headers.get("x-request-id")) or request_id)
        except SignatureError as exc:
            response = refusal(exc, request_id)
        except ClientGone:  # nobody reads it: the caller hung up mid-body, or was answered by the server (a 408)
            response = Response(status_code=answered_by_server(scope) or 499)
        logger.info(
            "%s %s %d",
            request.method,
            request.url.path,
            response.status_code,
            extra={"status": response.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)}
            | {"aws_request_id": request_id, "request_id": kept(request.headers.get("x-request-id")) or request_id},
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
        length = request.headers.get("content-length", "")
        if (body := await read_body(request.receive, self.max_body_bytes, length)) is None:
            raise ProblemError(413, f"the request body exceeds {self.max_body_bytes} bytes")
        if route.iam and self.verifier is not None:
            self.verifier.verify(_signed_request(request, body))
        if route.validator is not None:
            validate(route.validator, body)
        event = proxy_event(request, body, path, request_id, self.stage)
        tracing.inject_headers(event["headers"])
        context = LambdaContext(
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.timeouts.get(route.function, self.timeout_s),
            function_name=route.function,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{route.function}",
        )
        token = logs.request_id.set(kept(request.headers.get("x-request-id")) or request_id)
        tracing.tag_request(logs.request_id.get())
        # Whichever ends first: the function's timeout, or the integration's (API Gateway stops waiting).
        timeout_s = min(self.timeouts.get(route.function, self.timeout_s), route.timeout_s)
        try:
            async with asyncio.timeout(timeout_s):  # in this task (wait_for would start one more per request)
                if route.streaming:
                    return await self._invoke_streaming(self.functions[route.function], event, context, request_id)
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, self.functions[route.function], event, context)
        except TimeoutError as exc:
            raise ProblemError(504, f"the function did not answer within {timeout_s:g} s") from exc
        except ProblemError:
            raise
        except Exception as exc:
            logger.exception("the function raised")
            raise ProblemError(502, "the function failed (internal server error)") from exc
        finally:
            logs.request_id.reset(token)
        return to_response(result, request_id)

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


def _signed_request(request: Request, body: bytes) -> SignedRequest:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    return SignedRequest(
        request.method, raw_path.decode("latin-1"), request.scope.get("query_string", b"").decode(), headers, body
    )
