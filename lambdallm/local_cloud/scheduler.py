"""Admission to the model: as many requests as it has slots generate together, a bounded FIFO queue waits."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from lambdallm.local_cloud.engines import Completion, Emit, Engine, GenerationRequest


class Overloaded(Exception):
    """More requests than the model's slots plus `queue_size` waiting."""


@dataclass
class Timeline:
    """When one generation came, got its slot (as the scheduler sees it: at once, or when a slot was freed for it),
    made its first token and ended, in time.time_ns(): the local Bedrock's spans (model_trace.py)."""

    queued: int = 0
    slot: int = 0
    first_token: int = 0
    ended: int = 0


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
        self._waiting: deque[Timeline] = deque()  # the timelines of queued requests, first come first

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

    async def generate(
        self, request: GenerationRequest, emit: Emit | None = None, timeline: Timeline | None = None
    ) -> Completion:
        """Generate for `request`, noting its times in `timeline` if given; raises `Overloaded` when the queue is
        full."""
        self.check_room()
        cancelled = threading.Event()
        if timeline is not None:
            emit = self._timed(timeline, emit)
        future = self.engine.submit(request, emit, cancelled)
        if not self.engine.slots:
            if timeline is not None:
                timeline.slot, timeline.ended = timeline.queued, time.time_ns()
            return future.result()
        loop = asyncio.get_running_loop()
        if timeline is not None and self._admitted >= self.slots:
            self._waiting.append(timeline)
        elif timeline is not None:
            timeline.slot = timeline.queued
        self._admitted += 1
        self._running.add(cancelled)
        future.add_done_callback(lambda _: _call_soon(loop, self._release, cancelled))
        if timeline is not None:  # the process traces: the next request waiting has a timeline too
            # Run by the engine's thread as it frees the slot, before it takes the next request.
            future.add_done_callback(lambda _: self._slot_freed())
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Still queued: wrap_future cancelled the future, the engine skips it and its place is free now.
            # Generating: the engine ends it at its next step and frees its slot.
            cancelled.set()
            with contextlib.suppress(ValueError):  # not waiting (any more): nothing to forget
                self._waiting.remove(timeline)  # type: ignore[arg-type]
            raise
        finally:
            if timeline is not None:
                timeline.ended = time.time_ns()

    @staticmethod
    def _timed(timeline: Timeline, emit: Emit | None) -> Emit:
        """`emit`, noting when the first token came (in the engine's thread)."""
        timeline.queued = time.time_ns()

        def timed(text: str, tokens: int) -> None:
            if not timeline.first_token:
                timeline.first_token = time.time_ns()
            if emit is not None:
                emit(text, tokens)

        return timed

    def _release(self, cancelled: threading.Event) -> None:
        self._running.discard(cancelled)
        self._admitted -= 1

    def _slot_freed(self) -> None:
        """The first request waiting takes the slot freed now."""
        with contextlib.suppress(IndexError):
            self._waiting.popleft().slot = time.time_ns()

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
