"""CoalescedWrites: a connection's writes within one turn of the event loop leave as one."""

from __future__ import annotations

import asyncio
from typing import Any

from lambdallm.coalesced_writes import CoalescedWrites


class Recorded(asyncio.Transport):
    """A transport that keeps what is done to it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def coalesced(transport: Recorded | None = None) -> tuple[Recorded, CoalescedWrites]:
    """A recorded transport (a new one by default) and its CoalescedWrites on the running loop."""
    transport = transport or Recorded()
    return transport, CoalescedWrites(transport, asyncio.get_running_loop())


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_writes_of_one_turn_leave_as_one_write_at_the_next() -> None:
    async def main() -> list[tuple[str, Any]]:
        transport, writes = coalesced()
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        writes.write(bytearray(b"body"))
        writes.write(memoryview(b"!"))
        assert transport.calls == []  # nothing yet, within the turn
        await next_turn()
        writes.write(b"more")
        await next_turn()
        return transport.calls

    assert asyncio.run(main()) == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody!"), ("write", b"more")]


def test_closing_or_shutting_the_write_side_sends_what_is_held_first() -> None:
    async def main() -> list[tuple[str, Any]]:
        transport, writes = coalesced()
        writes.write(b"answer")
        writes.write_eof()
        writes.write(b"late")
        writes.close()
        await next_turn()  # the flush scheduled by the writes finds nothing left
        return transport.calls

    assert asyncio.run(main()) == [("write", b"answer"), ("write_eof", None), ("write", b"late"), ("close", None)]


def test_an_abort_drops_what_is_held_and_a_closing_transport_is_not_written() -> None:
    async def main() -> list[tuple[str, Any]]:
        transport, writes = coalesced()
        writes.write(b"dropped")
        writes.abort()
        await next_turn()
        closed, after = coalesced(Recorded())
        closed.closing = True  # the client went away under it
        after.write(b"nobody reads this")
        await next_turn()
        return transport.calls + closed.calls

    assert asyncio.run(main()) == [("abort", None)]


def test_everything_else_is_the_transports() -> None:
    async def main() -> Any:
        _, writes = coalesced()
        return writes.get_extra_info("peername"), writes.is_closing()

    assert asyncio.run(main()) == (("127.0.0.1", 1), False)
