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
    """One answer: a status and JSON body, optionally after a delay, or a dropped connection.

    For `POST /query/stream`, `events` are the NDJSON lines of a 200 (a 200 `body` is streamed as `events_of` it);
    before each event whose index is in
    `gates`, the fake waits for that gate to be set (so a test proves that what came before was forwarded);
    `drop_after` cuts the connection after that many events. With `hold`, the fake answers only once it is set.
    """

    status: int = 200
    body: Any = None
    delay_s: float = 0.0
    drop: bool = False
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] | None = None
    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    drop_after: int | None = None
    hold: asyncio.Event | None = None


def stream_events(prompt: str, request_id: str = "fake") -> list[dict[str, Any]]:
    """A contract-valid stream of `completion`'s text, word by word."""
    words = f"echo: {prompt}".split()
    texts = [{"type": "text", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
    done = completion(prompt, request_id, output_tokens=len(words)) | {"type": "done"}
    del done["text"]
    return [*texts, done]


def events_of(body: dict[str, Any], piece_chars: int = 16384) -> list[dict[str, Any]]:
    """A whole answer's body as the stream that carries it: its text in pieces, then the rest in the done event."""
    text = body.get("text")
    pieces = [text[i : i + piece_chars] for i in range(0, len(text), piece_chars)] if isinstance(text, str) else [text]
    rest = {key: value for key, value in body.items() if key != "text"}
    return [*({"type": "text", "text": piece} for piece in pieces), {"type": "done"} | rest]


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


FAKE_MODELS = {
    "models": [
        {"id": "fake-model", "owned_by": "fake", "instruct": True},
        {"id": "fake-base", "owned_by": "fake", "instruct": False},
    ]
}


def problem(status: int, detail: str) -> Reply:
    """A problem+json answer."""
    return Reply(status=status, body={"title": "error", "status": status, "detail": detail})


@dataclass
class FakeBackend:
    """Answers `POST /query` with queued replies, else an echo; records requests and cancellations."""

    replies: deque[Reply] = field(default_factory=deque)
    probe: Reply | None = None  # the answer to the readiness probe's empty query; None: a 400 problem
    models: Reply | None = None  # the answer to GET /models; None: FAKE_MODELS
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # of each request, in order
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/query", self._query)
        app.router.add_post("/query/stream", self._query)
        app.router.add_get("/models", self._models)
        # handler_cancellation: a client that hangs up cancels the handler, which the tests observe.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def wait_for_queries(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait until `count` queries other than readiness probes have arrived."""

        async def arrived() -> None:
            while sum(1 for _, body in self.requests if body != {}) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(arrived(), timeout_s)

    async def wait_for_probes(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait until `count` readiness probes (empty queries) have arrived."""

        async def arrived() -> None:
            while sum(1 for _, body in self.requests if body == {}) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(arrived(), timeout_s)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        self.paths.append(request.path)
        reply = self.models or Reply(body=FAKE_MODELS)
        if reply.raw is not None:
            return web.Response(status=reply.status, body=reply.raw, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _query(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.requests.append((dict(request.headers), body))
        self.paths.append(request.path)
        if isinstance(body, dict) and not body and self.probe is None:
            return web.json_response({"title": "Bad Request", "status": 400, "detail": "empty"}, status=400)
        if isinstance(body, dict) and not body and self.probe is not None:
            reply = self.probe
        else:
            reply = self.replies.popleft() if self.replies else Reply()
        try:
            await asyncio.sleep(reply.delay_s)
            if reply.hold is not None:
                await reply.hold.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if reply.drop:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if reply.raw is not None:
            return web.Response(status=reply.status, body=reply.raw, headers=reply.headers)
        prompt = body.get("prompt", "") if isinstance(body, dict) else ""
        if isinstance(body, dict) and body.get("messages"):
            prompt = body["messages"][-1]["content"]  # a conversation: echo its last turn
        rid = request.headers.get("X-Request-ID", "none")
        if reply.status == 200 and request.path == "/query/stream":
            events = reply.events or (events_of(reply.body) if reply.body is not None else stream_events(prompt, rid))
            return await self._stream(request, reply, events)
        if reply.status == 200 and reply.body is None:
            return web.json_response(completion(prompt, rid))
        return web.json_response(
            reply.body,
            status=reply.status,
            headers=reply.headers,
            content_type="application/json" if reply.status == 200 else "application/problem+json",
        )

    async def _stream(self, request: web.Request, reply: Reply, events: list[dict[str, Any]]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            for index, event in enumerate(events):
                if index == reply.drop_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if index in reply.gates:
                    await reply.gates[index].wait()
                await response.write(json.dumps(event).encode() + b"\n")
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        await response.write_eof()
        return response
