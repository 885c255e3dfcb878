"""The streaming integration (response transfer mode STREAM): a function's metadata, 8 NUL bytes, then its body,
relayed to the client as the function writes it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from starlette.types import Receive, Scope, Send

from lambdallm.body import ClientGone
from lambdallm.disconnect import disconnected, until_disconnect
from lambdallm.local_cloud.gateway_errors import ProblemError
from lambdallm.local_cloud.proxy_event import LambdaContext
from lambdallm.local_cloud.relay import batches

Handler = Callable[[dict[str, Any], Any], Any]  # a proxy response dict, or (streaming) an iterator of bytes
STREAM_SEPARATOR = b"\0" * 8  # between a streamed response's metadata and its body
logger = logging.getLogger("lambdallm.local_cloud.apigateway")


class StreamedResponse:
    """A streaming function's answer: its metadata (status, headers), then its body relayed as it comes.

    The handler runs in a Lambda thread (`pump`); its pieces reach the event loop through a queue. A client that
    hangs up, or the function's timeout, makes `pump` close the handler at its next piece.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, request_id: str) -> None:
        self._loop, self._deadline, self._request_id = loop, deadline, request_id
        self._pieces: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: the function has ended
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
        except Exception:
            logger.exception("the function raised")  # its answer ends here, as if it had returned
        finally:
            self._put(None)
            close = getattr(body, "close", None)
            if close:
                close()

    def stop(self) -> None:
        """Make `pump` close the handler at its next piece."""
        self._stop.set()

    def _put(self, item: bytes | None) -> None:
        self._loop.call_soon_threadsafe(self._pieces.put_nowait, item)

    async def read_metadata(self) -> None:
        """Wait for the metadata and the 8 NUL bytes after it; a function that fails before is a 502."""
        while STREAM_SEPARATOR not in self._head:
            piece = await self._pieces.get()
            if piece is None:
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
        try:
            await until_disconnect(self._relay(send), disconnected(receive), self._stopped)
        except ClientGone:
            pass  # the function stops at its next piece; nobody reads the rest
        finally:
            self._stop.set()

    def _stopped(self) -> bool:
        """Stop the function at its next piece; its relay, which only awaits the pieces, may be cancelled at once."""
        self._stop.set()
        return False

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
        if self._head:
            await send({"type": "http.response.body", "body": self._head, "more_body": True})
        async for ready in batches(self._pieces):  # what the function wrote since the last write, in one write
            if body := b"".join(ready):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
