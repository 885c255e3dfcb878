"""A client that hangs up cancels the request's gRPC calls, and the work ends by itself (issue 26): the task that
awaits a call is never cancelled mid-batch, which leaks the batch in grpc.aio (lambdallm/rest/calls.py)."""

from __future__ import annotations

import asyncio

from lambdallm.rest.calls import opened
from lambdallm.rest.middleware import run_until_disconnect


class FakeCall:
    """A call whose answer never comes; cancelling it fails its pending await, as grpc.aio's cancel() does."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    def cancel(self) -> bool:
        self.cancelled.set()
        return True

    def done(self) -> bool:
        return self.cancelled.is_set()

    async def answer(self) -> None:
        await self.cancelled.wait()
        raise CallCancelled


class CallCancelled(Exception):
    """What the fake call's await raises once the call is cancelled."""


def client_who_leaves(after_body: asyncio.Event):
    """An ASGI receive: the whole body, then a disconnect once `after_body` is set."""
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await after_body.wait()
        return {"type": "http.disconnect"}

    return receive


async def left_while(awaiting) -> tuple[bool, list[type[BaseException]]]:
    """Run an app that reads its body, lets its client leave, and awaits `awaiting()`; (left, what ended it)."""
    ended_by: list[type[BaseException]] = []
    leave = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        leave.set()
        try:
            await awaiting()
        except BaseException as exc:
            ended_by.append(type(exc))
            raise

    async def send(message):
        pass

    left = await asyncio.wait_for(run_until_disconnect(app, {"type": "http"}, client_who_leaves(leave), send), 10)
    return left, ended_by


async def test_a_hang_up_cancels_the_open_call_not_the_task_awaiting_it():
    call = FakeCall()

    left, ended_by = await left_while(lambda: opened(call).answer())

    assert left
    assert call.cancelled.is_set()
    assert ended_by == [CallCancelled]  # not asyncio.CancelledError: the task itself was left alone


async def test_work_without_an_open_call_is_cancelled_as_a_task():
    left, ended_by = await left_while(lambda: asyncio.Event().wait())

    assert left
    assert ended_by == [asyncio.CancelledError]
