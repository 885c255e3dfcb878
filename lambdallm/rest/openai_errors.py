"""The /v1 boundary's one table: an HTTP problem (every failure of the REST tier, the gRPC status of a failed call
included, lambdallm/rest/problems.py) -> OpenAI's error object, and the middleware that answers /v1 with it."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdallm.rest import routing
from llm_wire.problems import PROBLEM_JSON

PREFIX = "/v1"
# HTTP status -> OpenAI's (type, code), as OpenAI answers them; a status not here is its class's row (4xx, 5xx).
_OPENAI_ERROR: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),  # an operation's 404; an unknown URL's code is null
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}
# What a problem's detail starts with when it names a field: `messages[2].content: must be ...`.
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*): ")


def openai_error(status: int, message: str, *, routed: bool = True, key_sent: bool = True) -> dict[str, Any]:
    """OpenAI's error object for a failure answered with `status` and `message` (a problem's detail or title);
    `routed` is False for a URL no operation serves, `key_sent` False for a 401 without any key."""
    kind, code = _OPENAI_ERROR.get(status) or _OPENAI_ERROR[500 if status >= 500 else 400]
    if (status == 404 and not routed) or (status == 401 and not key_sent):
        code = None
    match = _PARAM.match(message)
    return {"error": {"message": message, "type": kind, "param": match.group(1) if match else None, "code": code}}


def from_problem(problem: dict[str, Any], *, routed: bool = True, key_sent: bool = True) -> dict[str, Any]:
    """OpenAI's error object for an RFC 9457 problem document."""
    status = problem.get("status")
    message = problem.get("detail") or problem.get("title") or "error"
    return openai_error(status if isinstance(status, int) else 500, str(message), routed=routed, key_sent=key_sent)


class OpenAIErrors:
    """ASGI middleware around the whole app: an application/problem+json answer to a /v1 path becomes OpenAI's
    error object (application/json) with the same status and headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        scope.setdefault("extensions", {})  # shared with the copies inside: Connexion's routing is seen here
        start: Message | None = None
        body: list[bytes] = []

        async def send_openai(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if Headers(raw=message["headers"]).get("content-type", "").startswith(PROBLEM_JSON):
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_error(send, scope, start, b"".join(body))
                return
            await send(message)

        await self.app(scope, receive, send_openai)

    @staticmethod
    async def _send_error(send: Send, scope: Scope, start: Message, body: bytes) -> None:
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        problem.setdefault("status", start["status"])
        routed = bool(routing.operation_id(scope))
        key_sent = "authorization" in Headers(scope=scope)
        error = json.dumps(from_problem(problem, routed=routed, key_sent=key_sent), ensure_ascii=False).encode()
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(error))
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": error})
