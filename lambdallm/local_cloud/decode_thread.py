"""The one thread that runs every `llama_decode` of the process, for every model it serves.

llama.cpp, built with OpenMP as llama-cpp-python builds it, computes a step on an OpenMP team that belongs to the
thread calling `llama_decode`. An engine on a thread of its own per model makes a team per model; once libgomp
manages more threads than the machine has cores, it stops spinning at a step's barriers and sleeps on them
instead (GOMP_SPINCOUNT's "throttled" count), for every team. Measured here (2 cores, 2 threads a model): SmolLM2's
step 8.5 ms, then 21 ms for good once Gemma had decoded once on its own thread. On one thread, every model's
steps share one team, and two models take turns where they would have fought over the cores anyway.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future


class DecodeThread:
    """Runs the calls it is given one at a time, in the order they come, on its own thread."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], int], Future[int]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="llama-decode", daemon=True).start()

    def run(self, call: Callable[[], int]) -> int:
        """`call()` on the decode thread, once the calls before it are done; its result, or what it raised."""
        done: Future[int] = Future()
        self._calls.put((call, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            call, done = self._calls.get()
            try:
                done.set_result(call())
            except BaseException as exc:  # the caller raises it
                done.set_exception(exc)


@functools.cache
def decode_thread() -> DecodeThread:
    """The process's one decode thread, started on first use."""
    return DecodeThread()
