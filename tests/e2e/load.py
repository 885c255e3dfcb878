"""A small closed-loop load for the fault tests: worker threads POSTing to the REST tier, each outcome recorded
with its times, so a test can say what happened before, during and after a fault."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.fakes.backend import FakeBackend
from tests.fakes.stack import fake_backend

BODY = {"prompt": "one two three", "max_tokens": 3}


@dataclass(frozen=True)
class Outcome:
    """One request: when it started and ended (monotonic s), its status, or the transport error it met."""

    started: float
    ended: float
    status: int | None
    media_type: str = ""
    error: str = ""

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """`workers` threads sending `BODY` to `url`/query back to back until the block ends."""

    url: str
    workers: int = 8
    timeout_s: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)  # the stack's API key, for one
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._work, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def _work(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s, headers=self.headers) as client:
            while not self._stop.is_set():
                self.outcomes.append(send(client))

    def wait_for(self, condition: Callable[[list[Outcome]], bool], timeout_s: float = 20.0) -> None:
        """Block until `condition(outcomes)` holds; AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition(list(self.outcomes)):
            assert time.monotonic() < deadline, f"not within {timeout_s} s; last: {self.outcomes[-3:]}"
            time.sleep(0.02)


def send(client: httpx.Client, body: dict[str, object] = BODY) -> Outcome:
    """POST /query once and record how it went."""
    started = time.monotonic()
    try:
        answer = client.post("/query", json=body)
    except httpx.HTTPError as exc:
        return Outcome(started, time.monotonic(), None, error=type(exc).__name__)
    media_type = answer.headers.get("content-type", "").split(";")[0]
    return Outcome(started, time.monotonic(), answer.status_code, media_type)


@contextmanager
def fake_backend_thread() -> Iterator[FakeBackend]:
    """A FakeBackend on its own event loop in a background thread, for tests that are not coroutines."""
    loop = asyncio.new_event_loop()
    started: dict[str, FakeBackend] = {}
    stop = asyncio.Event()
    ready = threading.Event()

    async def main() -> None:
        async with fake_backend() as fake:
            started["fake"] = fake
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield started["fake"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
