"""The REST tier's one boundary table: gRPC status -> HTTP problem+json, and the app's error handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from connexion.exceptions import NonConformingResponse, ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.types import Send

from lambdallm import logs
from lambdallm.rest.auth import CHALLENGE
from llm_wire.problems import PROBLEM_JSON, problem

log = logging.getLogger("lambdallm.rest")

# From the "HTTP Mapping" of google/rpc/code.proto, narrowed to what a gateway should say:
# a failure behind this tier that is not one of these is a bad gateway, not our own 500.
_HTTP_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "Bad Request"),
    grpc.StatusCode.NOT_FOUND: (404, "Not Found"),  # a model the backend does not serve
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "Too Many Requests"),
    grpc.StatusCode.UNAVAILABLE: (503, "Service Unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "Gateway Timeout"),
}
_BAD_GATEWAY = (502, "Bad Gateway")
# The trailer with which the proxy marks a status it wrote for the client (lambdallm/proxy/errors.py). Any other
# status's details are the gRPC library's own words (addresses, exceptions): logged here, never shown.
ORIGIN_TRAILER = ("lambdallm-origin", "proxy")


def problem_body(status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem document carrying the request id."""
    return problem(status, detail, logs.request_id.get(), title)


def problem_response(
    status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None
) -> ConnexionResponse:
    """The problem+json answer for `problem_body`."""
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_JSON,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem_body(status, title, detail), ensure_ascii=False).encode(),
        headers=headers or {},
    )


async def send_problem(
    send: Send, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> None:
    """Answer a problem straight over ASGI, for middleware that answers before Connexion does."""
    body = json.dumps(problem_body(status, title, detail), ensure_ascii=False).encode()
    raw = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def problem_for_status(exc: grpc.aio.AioRpcError) -> ProblemException:
    """The ProblemException for a failed gRPC call; `detail` is the status details when the proxy wrote them for
    the client (a field's error, the model's load, the backend's own problem), else only the status's name."""
    status, title = _HTTP_STATUS.get(exc.code(), _BAD_GATEWAY)
    trailers = tuple(exc.trailing_metadata() or ())
    detail = f"the call to the gRPC proxy failed: {exc.code().name}"
    if exc.details() and (exc.code() is grpc.StatusCode.INVALID_ARGUMENT or ORIGIN_TRAILER in trailers):
        detail = exc.details()
    else:
        log.warning("gRPC call failed", extra={"code": exc.code().name, "details": exc.details()})
    headers: dict[str, str] = {}
    if status == 429:
        retry_after = str(dict(trailers).get("retry-after", ""))
        if not (retry_after.isascii() and retry_after.isdigit()):
            # The proxy marks every "model busy" with retry-after; without it, gRPC itself refused the call
            # (a message over its size limit): not the model's load, and its wording is gRPC's internals.
            status, title = _BAD_GATEWAY
            return ProblemException(status=status, title=title, detail="the gRPC call exceeded a gRPC limit")
        headers["Retry-After"] = retry_after
    return ProblemException(status=status, title=title, detail=detail, headers=headers)


@contextmanager
def map_grpc_errors() -> Iterator[None]:
    """Translate a failed gRPC call inside the block into a ProblemException."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise problem_for_status(exc) from exc


async def on_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Render Connexion's and Starlette's HTTP errors (validation, 404, 405, 413 ...) as our problems."""
    assert isinstance(exc, HTTPException)
    title = getattr(exc, "title", None) or _title(exc.status_code)
    detail = exc.detail if isinstance(exc, ProblemException) else None
    detail = detail or (exc.detail if isinstance(exc.detail, str) and exc.detail != title else None)
    if isinstance(exc, NonConformingResponse):  # its detail quotes the answer
        detail = "the answer does not conform to the API specification; the logs have this request id"
    (log.warning if exc.status_code < 500 else log.error)(
        "problem", extra={"status": exc.status_code, "detail": detail}
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", CHALLENGE)
    return problem_response(exc.status_code, title, detail, headers)


async def on_unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Anything else: log the traceback, answer a problem without it."""
    log.error("unexpected error", exc_info=exc)
    return problem_response(500, "Internal Server Error", "unexpected error; the logs have this request id")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
