"""A fake LLM backend on loopback (aiohttp.web) whose next answers each test chooses."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One answer: a status and JSON body, optionally after a delay, or a dropped connection."""

    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    drop: bool = False
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def completion(prompt: str, request_id: str = "fake", **overrides: Any) -> dict[str, Any]:
    """A contract-valid 200 body echoing the prompt."""
    body = {
        "text": f"echo: {prompt}",
        "model": "fake-model",
        "input_tokens": len(prompt.split()),
        "output_tokens": 2,
        "finish_reason": "stop",
        "request_id": request_id,
    }
    return body | overrides


def problem(status: int, detail: str) -> Reply:
    """A problem+json answer."""
    return Reply(status=status, body={"title": "error", "status": status, "detail": detail})


@dataclass
class FakeBackend:
    """Answers `POST /query` with queued replies, else an echo; records requests and cancellations."""

    replies: deque[Reply] = field(default_factory=deque)
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/query", self._query)
        # handler_cancellation: a client that hangs up cancels the handler, which the tests observe.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _query(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.requests.append((dict(request.headers), body))
        if isinstance(body, dict) and not body:
            return web.json_response({"title": "Bad Request", "status": 400, "detail": "empty"}, status=400)
        reply = self.replies.popleft() if self.replies else Reply()
        try:
            await asyncio.sleep(reply.delay_s)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if reply.drop:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if reply.raw is not None:
            return web.Response(status=reply.status, body=reply.raw, headers=reply.headers)
        if reply.status == 200 and reply.body is None:
            prompt = body.get("prompt", "") if isinstance(body, dict) else ""
            if isinstance(body, dict) and body.get("messages"):
                prompt = body["messages"][-1]["content"]  # a conversation: echo its last turn
            rid = request.headers.get("X-Request-ID", "none")
            return web.json_response(completion(prompt, rid))
        return web.json_response(
            reply.body,
            status=reply.status,
            headers=reply.headers,
            content_type="application/json" if reply.status == 200 else "application/problem+json",
        )
