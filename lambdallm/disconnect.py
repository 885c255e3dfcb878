"""Work cancelled when its HTTP client hangs up, for every HTTP tier (the REST tier's requests, the local API
Gateway's streams, the local Bedrock's generations): one watcher, one order of stopping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdallm.body import ClientGone

T = TypeVar("T")
logger = logging.getLogger("lambdallm.disconnect")


def nothing_to_stop() -> bool:
    """The default `stop`: no way to ask the work to end, so it is cancelled as a task at once."""
    return False


async def disconnected(receive: Receive) -> None:
    """Return once the client has gone (`receive` says http.disconnect); call it only once the body is read."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(
    work: Awaitable[T], hung_up: Awaitable[None], stop: Callable[[], bool] = nothing_to_stop, grace_s: float = 0.0
) -> T:
    """Await `work`; if `hung_up` completes first, stop the work and raise `ClientGone`.

    `stop` asks the work to end by itself (True if it will): a task cancelled while it awaits a gRPC batch leaks the
    batch (lambdallm/rest/calls.py), so its calls are cancelled instead. The work is cancelled as a task only if
    `stop` cannot end it, or it is still running `grace_s` after.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(hung_up)
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        logger.info("client disconnected; request cancelled")
        if stop():
            await asyncio.wait({task}, timeout=grace_s)
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # whatever the work ended with once its client was gone, nobody reads it
        raise ClientGone
    finally:
        watcher.cancel()
        task.cancel()


async def run_until_disconnect(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    stop: Callable[[], bool] = nothing_to_stop,
    grace_s: float = 0.0,
) -> bool:
    """Run `app`; if the client disconnects once the app has read the body and before the answer is complete,
    stop it as `until_disconnect` does. True if the client left."""
    body_read = asyncio.Event()
    answered = False

    async def receive_body() -> Message:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_read.set()
        return message

    async def send_tracked(message: Message) -> None:
        nonlocal answered
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered = True
        await send(message)

    async def hung_up() -> None:
        await body_read.wait()  # until then the app reads `receive` itself, and sees a hang-up as it reads
        await disconnected(receive)
        if answered:  # servers report the end of an answered request as a disconnect: the work just ends
            await asyncio.Event().wait()

    try:
        await until_disconnect(app(scope, receive_body, send_tracked), hung_up(), stop, grace_s)
    except ClientGone:
        return True
    return False
