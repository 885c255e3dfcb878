"""The one cancel-on-disconnect every HTTP tier uses (lambdallm/disconnect.py): work is stopped the tier's way first,
cancelled as a task only when that cannot end it, and a disconnect after the whole answer is no hang-up."""

from __future__ import annotations

import asyncio

import pytest

from lambdallm.body import ClientGone
from lambdallm.disconnect import run_until_disconnect, until_disconnect

Message = dict[str, object]


async def never() -> None:
    await asyncio.Event().wait()


async def gone() -> None:
    pass


async def test_work_that_ends_first_gives_its_result() -> None:
    async def work() -> str:
        return "answer"

    assert await until_disconnect(work(), never()) == "answer"


async def test_work_the_client_left_is_cancelled_at_once_when_nothing_can_stop_it() -> None:
    ended_by: list[type[BaseException]] = []

    async def work() -> None:
        try:
            await never()
        except BaseException as exc:
            ended_by.append(type(exc))
            raise

    with pytest.raises(ClientGone):
        await asyncio.wait_for(until_disconnect(work(), gone()), 10)
    assert ended_by == [asyncio.CancelledError]


async def test_work_that_its_stop_ends_is_left_to_end_by_itself() -> None:
    stopped = asyncio.Event()
    ended_by: list[type[BaseException]] = []

    async def work() -> None:
        try:
            await stopped.wait()
            raise ConnectionAbortedError  # as a cancelled call fails its pending read
        except BaseException as exc:
            ended_by.append(type(exc))
            raise

    def stop() -> bool:
        stopped.set()
        return True

    with pytest.raises(ClientGone):
        await asyncio.wait_for(until_disconnect(work(), gone(), stop, grace_s=60), 10)
    assert ended_by == [ConnectionAbortedError]  # not cancelled as a task, and its error read by nobody


async def test_work_that_outlives_the_grace_after_its_stop_is_cancelled() -> None:
    with pytest.raises(ClientGone):
        await asyncio.wait_for(until_disconnect(never(), gone(), lambda: True, grace_s=0.01), 10)


def receive_of(messages: list[Message], then: asyncio.Event, told: asyncio.Event | None = None):
    """An ASGI receive: `messages`, then a disconnect once `then` is set (and `told` set once it says so)."""

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await then.wait()
        if told is not None:
            told.set()
        return {"type": "http.disconnect"}

    return receive


async def test_a_disconnect_after_the_whole_answer_lets_the_app_finish() -> None:
    finished, answered, told = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def app(scope, receive, send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        answered.set()  # servers say "disconnect" from here on
        await told.wait()
        for _ in range(20):  # cleanup after the answer, which a hang-up would cancel
            await asyncio.sleep(0)
        finished.set()

    async def send(message: Message) -> None:
        pass

    receive = receive_of([{"type": "http.request", "body": b"{}"}], answered, told)
    left = await asyncio.wait_for(run_until_disconnect(app, {"type": "http"}, receive, send), 10)

    assert not left
    assert finished.is_set()


async def test_a_client_gone_before_the_answer_stops_the_app() -> None:
    async def app(scope, receive, send) -> None:
        await receive()
        await never()

    async def send(message: Message) -> None:
        pass

    left_at_once = asyncio.Event()
    left_at_once.set()
    receive = receive_of([{"type": "http.request", "body": b"{}"}], left_at_once)

    assert await asyncio.wait_for(run_until_disconnect(app, {"type": "http"}, receive, send), 10)
