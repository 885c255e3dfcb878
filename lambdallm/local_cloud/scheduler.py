"""One model thread, one generation at a time, behind a fair FIFO queue that refuses work when full."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from lambdallm.local_cloud.engines import Completion, Emit, Engine, GenerationRequest


class Overloaded(Exception):
    """More requests than the one generating plus `queue_size` waiting."""


class Scheduler:
    """Runs `engine` generations in arrival order on a single worker thread.

    A request beyond `queue_size` waiting is refused at once (`Overloaded`); a request whose caller is
    cancelled while queued never reaches the model, and one cancelled mid-generation stops at its next token.
    Non-blocking engines (the instant echo) run inline on the event loop and are never refused.
    """

    def __init__(self, engine: Engine, queue_size: int) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self._admitted = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._running: set[threading.Event] = set()

    @property
    def waiting(self) -> int:
        """Requests admitted and not finished, minus the one generating."""
        return max(0, self._admitted - 1)

    def check_room(self) -> None:
        """Raise `Overloaded` if a new blocking request would find the queue full."""
        if self.engine.blocking and self._admitted > self.queue_size:
            raise Overloaded(f"{self.waiting} requests are waiting for the model")

    async def generate(self, request: GenerationRequest, emit: Emit | None = None) -> Completion:
        """Generate for `request`; raises `Overloaded` when the queue is full."""
        cancelled = threading.Event()
        if not self.engine.blocking:
            return self.engine.generate(request, emit, cancelled)
        self.check_room()
        loop = asyncio.get_running_loop()
        self._admitted += 1
        self._running.add(cancelled)
        future: Future[Completion] = self._executor.submit(self.engine.generate, request, emit, cancelled)
        future.add_done_callback(lambda _: _call_soon(loop, self._release, cancelled))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Still queued: wrap_future cancelled it, the thread skips it and its place is free now.
            # Generating: it stops at its next token and frees its place when it returns.
            cancelled.set()
            if future.cancelled():
                self._release(cancelled)
            raise

    def _release(self, cancelled: threading.Event) -> None:
        if cancelled in self._running:
            self._running.discard(cancelled)
            self._admitted -= 1

    def close(self) -> None:
        """Stop running generations, drop queued ones and let the thread end."""
        for cancelled in self._running:
            cancelled.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[[threading.Event], None], arg: threading.Event
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed at shutdown while a generation finished
        loop.call_soon_threadsafe(callback, arg)
