"""Admission to the model: as many requests as it has slots generate together, a bounded FIFO queue waits."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from lambdallm.local_cloud.engines import Completion, Emit, Engine, GenerationRequest


class Overloaded(Exception):
    """More requests than the model's slots plus `queue_size` waiting."""


class Scheduler:
    """Hands requests to `engine`, which generates up to `engine.slots` of them at once in arrival order.

    A request beyond the slots and `queue_size` waiting is refused at once (`Overloaded`); a request whose
    caller is cancelled while queued never reaches the model, and one cancelled mid-generation stops at the
    engine's next step, freeing its slot. Inline engines (`slots == 0`, the instant echo) are never refused.
    """

    def __init__(self, engine: Engine, queue_size: int) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self._admitted = 0
        self._running: set[threading.Event] = set()

    @property
    def slots(self) -> int:
        """Requests the engine generates at once (0 for an inline engine, which needs no slot)."""
        return self.engine.slots

    @property
    def busy(self) -> int:
        """Slots generating now."""
        return min(self._admitted, self.slots)

    @property
    def waiting(self) -> int:
        """Requests admitted and not finished, beyond those in a slot."""
        return max(0, self._admitted - self.slots)

    def check_room(self) -> None:
        """Raise `Overloaded` if a new request would find every slot busy and the queue full."""
        if self.engine.slots and self._admitted >= self.engine.slots + self.queue_size:
            raise Overloaded(f"{self.waiting} requests are waiting for the model")

    async def generate(self, request: GenerationRequest, emit: Emit | None = None) -> Completion:
        """Generate for `request`; raises `Overloaded` when the queue is full."""
        self.check_room()
        cancelled = threading.Event()
        future = self.engine.submit(request, emit, cancelled)
        if not self.engine.slots:
            return future.result()
        loop = asyncio.get_running_loop()
        self._admitted += 1
        self._running.add(cancelled)
        future.add_done_callback(lambda _: _call_soon(loop, self._release, cancelled))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Still queued: wrap_future cancelled the future, the engine skips it and its place is free now.
            # Generating: the engine ends it at its next step and frees its slot.
            cancelled.set()
            raise

    def _release(self, cancelled: threading.Event) -> None:
        self._running.discard(cancelled)
        self._admitted -= 1

    def close(self) -> None:
        """Stop running generations, drop queued ones and free the model."""
        for cancelled in self._running:
            cancelled.set()
        self.engine.close()


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[[threading.Event], None], arg: threading.Event
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed at shutdown while a generation finished
        loop.call_soon_threadsafe(callback, arg)
