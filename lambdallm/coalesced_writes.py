"""A connection's writes made within one turn of the event loop, sent as one: an answer's head and its body (and
the pieces of a stream that were ready together, and the chunked body's last chunk) leave in one segment, in one
system call, and reach the client in one read, where uvicorn writes each of them on its own."""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescedWrites:
    """`transport` (a connection's), with its writes held until the loop's next turn and then written together.

    Whatever else a caller asks of the transport goes to it, after what is held has been written when the order
    matters (closing it, or shutting its write side). An abort drops what is held, as it drops the transport's own
    buffer. Backpressure is unchanged: the transport pauses its protocol once what it holds passes its high-water
    mark, as it would have one turn earlier.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        """Write what is held now (nothing, once the transport is closing: the client is gone)."""
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, can_write_eof, reading, buffer sizes
        return getattr(self._transport, name)
