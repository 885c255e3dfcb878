"""Streamed answers timed token by token: the chain's server-sent events and llama-server's streamed /completion.

wrk's Lua hooks only see a response once it is whole, so time to first token needs its own client. This one is
httpx on keep-alive connections, a thread per concurrent client: a handful of streams, not load generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent

from lambdallm.bench.stats import percentile

TIMEOUT_S = 300.0  # queued generations of the real model wait their turn


class StreamError(RuntimeError):
    """A stream failed: an error status, an error event, or no final event."""


@dataclass(frozen=True)
class Stream:
    """One streamed answer, times from sending the request: its first and last token's text, and its tokens."""

    first_s: float
    last_s: float
    tokens: int  # output tokens the final event counts

    @property
    def ttft_ms(self) -> float:
        return self.first_s * 1000

    @property
    def tokens_per_s(self) -> float:
        """Tokens/s between the first and the last token's text: the pace of the stream, without the time to the
        first token (tokens - 1 steps in that span)."""
        span = self.last_s - self.first_s
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0


@dataclass(frozen=True)
class StreamBatch:
    """The streams of one batch (one client in a row, or several at once), summarised."""

    streams: list[Stream]

    @property
    def ttft_p50_ms(self) -> float:
        return percentile([s.ttft_ms for s in self.streams], 50)

    @property
    def ttft_p99_ms(self) -> float:
        return percentile([s.ttft_ms for s in self.streams], 99)

    @property
    def tokens_per_s(self) -> float:
        """Tokens/s of the batch's streams between their first and last tokens (pooled: all steps / all spans)."""
        steps = sum(s.tokens - 1 for s in self.streams if s.tokens > 1)
        span = sum(s.last_s - s.first_s for s in self.streams if s.tokens > 1)
        return steps / span if span > 0 else 0.0


Reader = Callable[[Iterator[ServerSentEvent], float], Stream]


def read_chain_events(events: Iterator[ServerSentEvent], start: float) -> Stream:
    """The REST tier's events: `text` events as the tokens come, then `done` with output_tokens."""
    first = last = 0.0
    for event in events:
        now = time.perf_counter() - start
        if event.event == "text":
            first, last = first or now, now
        elif event.event == "done":
            return _stream(first, last, int(event.json()["output_tokens"]))
        elif event.event == "error":
            raise StreamError(f"error event: {event.data}")
    raise StreamError("the stream ended without a done event")


def read_llama_server(events: Iterator[ServerSentEvent], start: float) -> Stream:
    """llama-server's /completion stream: unnamed events of JSON with each token's content, the last with
    `stop: true`."""
    first = last = 0.0
    for event in events:
        now = time.perf_counter() - start
        data = event.json()
        if data.get("stop"):
            return _stream(first, last, int(data["tokens_predicted"]))
        if data.get("content") or data.get("tokens"):
            first, last = first or now, now
    raise StreamError("the stream ended without a final object")


def _stream(first: float, last: float, tokens: int) -> Stream:
    if tokens and not first:
        raise StreamError(f"{tokens} tokens counted but no text arrived")
    return Stream(first_s=first, last_s=last, tokens=tokens)


class StreamClient:
    """Keep-alive HTTP connections for timing streamed answers; a context manager that closes them."""

    def __init__(self, max_clients: int = 16) -> None:
        limits = httpx.Limits(max_connections=max_clients, max_keepalive_connections=max_clients)
        self._http = httpx.Client(timeout=TIMEOUT_S, limits=limits)

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def one(self, url: str, body: dict[str, Any], read: Reader, headers: dict[str, str] | None = None) -> Stream:
        """POST `body` (with `headers`) to `url` asking for a stream; its times from the moment the request is sent."""
        headers = {"Accept": "text/event-stream"} | (headers or {})
        start = time.perf_counter()
        with self._http.stream("POST", url, json=body, headers=headers) as answer:
            if answer.status_code != 200:
                raise StreamError(f"{url} answered {answer.status_code}: {answer.read()[:500]!r}")
            return read(EventSource(answer).iter_sse(), start)

    def batch(
        self,
        url: str,
        body: dict[str, Any],
        read: Reader,
        clients: int,
        each: int = 1,
        headers: dict[str, str] | None = None,
    ) -> StreamBatch:
        """`clients` concurrent clients, each streaming `each` answers in a row; all the streams."""
        if clients == 1:
            return StreamBatch([self.one(url, body, read, headers) for _ in range(each)])

        def client(_: int) -> list[Stream]:
            return [self.one(url, body, read, headers) for _ in range(each)]

        with ThreadPoolExecutor(clients) as pool:
            return StreamBatch([s for streams in pool.map(client, range(clients)) for s in streams])
