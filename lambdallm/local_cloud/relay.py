"""Passing on what a model thread makes, as the local cloud's streaming answers do: what is ready together goes
out in one write, and a client's hang-up stops the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from typing import TypeVar

from starlette.types import Receive, Scope, Send

from lambdallm.body import ClientGone
from lambdallm.disconnect import disconnected, until_disconnect

T = TypeVar("T")


async def batches(queue: asyncio.Queue[T | None]) -> AsyncIterator[list[T]]:
    """The items of `queue` up to its None, those already waiting taken together with the one awaited: a model
    faster than its reader (or one that answers at once) is passed on in fewer writes, and the first item never
    waits for a second."""
    while True:
        batch = [await queue.get()]
        while batch[-1] is not None and not queue.empty():
            batch.append(queue.get_nowait())
        items = [item for item in batch if item is not None]
        if items:
            yield items
        if batch[-1] is None:
            return


class ChunkedAnswer:
    """An ASGI answer whose body is `chunks` (each written as one piece) as they come; a client that hangs up
    cancels the iteration, which closes `chunks` (and so stops their maker). Unlike Starlette's StreamingResponse,
    it starts no task group per answer."""

    def __init__(self, chunks: AsyncGenerator[bytes], media_type: str, headers: dict[str, str]) -> None:
        self.chunks = chunks
        self.status_code = 200
        fields = {"content-type": media_type} | {name.lower(): value for name, value in headers.items()}
        self.headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with suppress(ClientGone):  # the chunks were closed; nobody reads the rest
            await until_disconnect(self._write(send), disconnected(receive))

    async def _write(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
        async with aclosing(self.chunks) as chunks:  # closed even when cancelled while a write waits
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
