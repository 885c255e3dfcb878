"""Streams that clients abandon at random points (issue 26), and how much of them each tier keeps (RSS growth).

A client asks `POST /query` for server-sent events, reads 0, 1, 3 or 10 events, and closes its connection, as a chat
page's stop button does; 0 hangs up before the first event. The prompt is long enough that the answer is still
streaming when the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
from urllib.parse import urlsplit

from lambdallm.bench.memory import rss_mb
from lambdallm.stack import Stack

EVENTS_READ = (0, 1, 3, 10)  # events a client reads before it hangs up
PROMPT = " ".join(f"word{i}" for i in range(300))  # the instant engine echoes it, one event a word
BODY = json.dumps({"prompt": PROMPT, "max_tokens": 300}).encode()


async def _abandon_one(host: str, port: int, authorization: str, events: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (
            f"POST /query HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
            f"Accept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        )
        writer.write(head.encode() + BODY)
        await writer.drain()
        seen = 0
        while seen < events:
            line = await reader.readline()
            if not line or line.startswith(b"event: done"):  # the answer ended first: nothing left to abandon
                break
            seen += line.startswith(b"event:")
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the tier may have closed first
            await writer.wait_closed()


async def _abandon(
    host: str, port: int, authorization: str, count: int, connections: int, seed: int, events: tuple[int, ...]
) -> None:
    chooser = random.Random(seed)
    plan = [chooser.choice(events) for _ in range(count)]

    async def client(share: list[int]) -> None:
        for read in share:
            await _abandon_one(host, port, authorization, read)

    await asyncio.gather(*(client(plan[i::connections]) for i in range(connections)))


def abandon_streams(
    stack: Stack, count: int, connections: int = 4, seed: int = 26, events: tuple[int, ...] = EVENTS_READ
) -> None:
    """Abandon `count` streams at the chain's REST tier, `connections` clients at a time, each after a number of
    events chosen from `events`."""
    url = urlsplit(stack.rest_url)
    authorization = stack.auth_headers["Authorization"]
    asyncio.run(_abandon(url.hostname or "127.0.0.1", url.port or 80, authorization, count, connections, seed, events))


def rss_trend_mb(
    stack: Stack, streams: int, warm_up: int, windows: int, per: int, events: tuple[int, ...] = EVENTS_READ
) -> dict[str, float]:
    """Each tier's RSS growth in MiB per `per` abandoned streams, after `warm_up` of them: the slope of the line
    that fits its RSS best (least squares), read before and after each of `windows` equal shares of `streams`.

    A leak grows every share. An allocator that reaches a new high-water mark grows one share by a step: the
    proxy's heap did, a megabyte or two now and then, while its bytes in use and Python's blocks stayed flat. A
    difference of two readings takes such a step whole; the fitted line spreads it over all the shares. One window
    with `per` = `streams` is that difference (the bench's figure)."""
    abandon_streams(stack, warm_up, events=events)
    share = streams // windows
    done = [share * k for k in range(windows + 1)]
    readings = {tier: [rss_mb(process.pid)] for tier, process in stack.processes.items()}
    for k in range(windows):
        abandon_streams(stack, share, seed=27 + k, events=events)
        for tier, process in stack.processes.items():
            readings[tier].append(rss_mb(process.pid))
    return {tier: statistics.linear_regression(done, rss).slope * per for tier, rss in readings.items()}
