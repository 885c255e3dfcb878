"""ASGI middleware around the whole app: request id for headers and logs, body size limit, access log."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdallm import disconnect, logs, tracing
from lambdallm.http_protocol import answered_by_server
from lambdallm.rest import timing
from lambdallm.rest.calls import OpenCalls
from lambdallm.rest.problems import send_problem
from llm_wire.request_id import request_id

REQUEST_ID_HEADER = "X-Request-ID"
CLIENT_CLOSED_REQUEST = 499  # nginx's code for a client that hung up before the answer; only ever logged
# How long work whose gRPC calls were cancelled (its client gone) may take to end by itself before its task is
# cancelled: a cancelled call fails its pending read at once, so this bounds only a stuck app.
CANCEL_GRACE_S = 5.0
log = logging.getLogger("lambdallm.rest.access")


class RequestContext:
    """Sets the request id (sent or generated) for logs and the response header; enforces max_body_bytes and
    refuses encoded bodies; cancels the request's work (and so its gRPC call) when the client hangs up before
    the answer."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = with_lower_media_type(scope)
        headers = Headers(scope=scope)
        sent = headers.get(REQUEST_ID_HEADER, "")
        token = logs.request_id.set(request_id(sent))
        tracing.tag_request(logs.request_id.get())
        timing_token = timing.start()
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = logs.request_id.get()
                timing.add_header(message)
            await send(message)

        try:
            # Only the announced length is looked at here: no body is read before the request is authenticated
            # (the edge's Admission reads it, within the same limit, once the key is checked).
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                detail = f"request body exceeds {self.max_body_bytes} bytes"
                await send_problem(send_with_id, 413, "Content Too Large", detail)
            elif headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
                # RFC 9110 8.4: a coding the server does not decode is a 415, not a body to misread.
                detail = "content-encoding: must be identity (compressed bodies are not accepted)"
                await send_problem(send_with_id, 415, "Unsupported Media Type", detail)
            elif await run_until_disconnect(self.app, scope, receive, send_with_id) or not status:
                # Cancelled, or ended unanswered: the client left, unless the server answered it itself (a 408).
                status = answered_by_server(scope) or CLIENT_CLOSED_REQUEST
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            logs.request_id.reset(token)
            timing.stop(timing_token)


def with_lower_media_type(scope: Scope) -> Scope:
    """`scope` with its Content-Type's media type in lower case: media types are case-insensitive (RFC 9110),
    but Connexion compares them as they come, and takes an `APPLICATION/JSON` body for bytes."""
    for index, (name, value) in enumerate(scope["headers"]):
        if name == b"content-type":
            media_type, separator, parameters = value.partition(b";")
            if media_type.islower() or not media_type.strip():
                return scope
            headers = list(scope["headers"])
            headers[index] = (name, media_type.lower() + separator + parameters)
            return {**scope, "headers": headers}
    return scope


def with_body(scope: Scope, receive: Receive, body: bytes) -> tuple[Scope, Receive]:
    """`scope` announcing `body` by its Content-Length (Connexion reads a body only when one is announced), and
    a receive that hands `body` over first."""
    if any(name == b"transfer-encoding" for name, _ in scope["headers"]):
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {**scope, "headers": headers}
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, replay


async def run_until_disconnect(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> bool:
    """Run `app`; if the client disconnects once its body is read and before the answer is complete, stop the
    app (its gRPC calls are cancelled, and the proxy drops the backend request). True if so.

    The calls are cancelled first and the app ends by itself as they fail (cancelling a task that awaits a
    gRPC batch leaks the batch: lambdallm/rest/calls.py); only an app that has no call open, or outlives
    CANCEL_GRACE_S after its calls were cancelled, is cancelled as a task.
    """
    calls = OpenCalls()
    token = calls.track()  # the app's task, started in this context, records the calls it opens
    try:
        return await disconnect.run_until_disconnect(app, scope, receive, send, calls.cancel, CANCEL_GRACE_S)
    finally:
        calls.untrack(token)
