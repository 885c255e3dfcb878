"""Every HTTP tier (REST, local API Gateway, local Bedrock and its /metrics, the proxy's /metrics) bounds its
connections (issue 18, finding 6): a header block and a body within their time, idle keep-alive connections
closed, a client that never reads its answer dropped, at most max_connections at once; and it serves other
clients meanwhile. Raw sockets, with short limits from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry

from lambdallm.http_protocol import ConnectionLimits
from lambdallm.local_cloud.server import running_local_cloud
from lambdallm.proxy.metrics import start_metrics_server
from lambdallm.settings import CloudSettings
from tests.fakes.raw_http import build_request, closed_by_server, parse_answer, read_until_closed, send_raw
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.scrape import scrape

SHORT = {"header_timeout_s": 0.3, "body_timeout_s": 0.3, "write_timeout_s": 0.3, "keep_alive_s": 1}
TITAN_INVOKE = "/model/amazon.titan-text-premier-v1:0/invoke"
T = TypeVar("T")


@dataclass
class Tier:
    """A running tier: its port, a request it answers 200, a POST whose body it waits for, and where its
    requests are counted (the port of its /metrics and the counter's name)."""

    name: str
    port: int
    healthy: tuple[str, str, bytes]
    post_path: str
    metrics_port: int = 0
    requests_metric: str = ""

    def serves(self) -> int:
        """The status of one well-formed request on a fresh connection."""
        method, path, body = self.healthy
        head = [("Content-Type", "application/json")] if body else []
        return send_raw(self.port, build_request(method, path, head, body, self.port)).status


@contextlib.asynccontextmanager
async def running(name: str, **limits: float) -> AsyncIterator[Tier]:
    """The tier `name` on a free port with `limits` (settings keys)."""
    if name == "rest":
        async with running_rest("127.0.0.1:1", **limits) as url:
            port = int(url.rsplit(":", 1)[1])
            yield Tier(name, port, ("GET", "/health", b""), "/query", port, "lambdallm_rest_requests_total")
        return
    if name == "proxy-metrics":  # answers at once, reading no body: bodies are bounded by the lingering close
        keep_alive = int(limits.pop("keep_alive_s", 5))
        connection_limits = ConnectionLimits(**{"max_connections": 64, **limits})  # type: ignore[arg-type]
        scraper, port = await start_metrics_server(CollectorRegistry(), "127.0.0.1", 0, connection_limits, keep_alive)
        try:
            yield Tier(name, port, ("GET", "/metrics", b""), "/metrics")
        finally:
            await scraper.cleanup()
        return
    settings = CloudSettings(host="127.0.0.1", apigw_port=0, bedrock_port=0, engine="instant", **limits)  # type: ignore[arg-type]
    with running_local_cloud(settings) as cloud:
        if name == "apigw":
            query = json.dumps({"prompt": "Hi there", "max_tokens": 3}).encode()
            counter = "lambdallm_apigateway_requests_total"
            yield Tier(name, cloud.apigw_port, ("POST", "/query", query), "/query", cloud.bedrock_port, counter)
        else:
            counter = "lambdallm_bedrock_requests_total"
            yield Tier(name, cloud.bedrock_port, ("GET", "/metrics", b""), TITAN_INVOKE, cloud.bedrock_port, counter)


TIERS = ["rest", "apigw", "bedrock", "proxy-metrics"]


@pytest.fixture(params=TIERS)
async def tier(request) -> AsyncIterator[Tier]:
    async with running(request.param, **SHORT) as started:
        yield started


@pytest.fixture(params=TIERS[:3])
async def reading_tier(request) -> AsyncIterator[Tier]:
    """A tier whose POST waits for its body."""
    async with running(request.param, **SHORT) as started:
        yield started


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def poll(read: Callable[[], T], done: Callable[[T], bool], bound_s: float = 10.0) -> T:
    """What `read` returns once `done` says so, or when `bound_s` (generous) has passed."""
    deadline = time.monotonic() + bound_s
    while not done(found := read()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def trickle(sock: socket.socket, data: bytes, pause_s: float = 0.05) -> bool:
    """Send `data` a byte at a time; True if the server closed the connection before all of it was sent."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return True
        if closed_by_server(sock, timeout=pause_s):
            return True
    return False


async def test_a_connection_that_sends_nothing_is_closed(tier: Tier) -> None:
    with connect(tier.port) as idle:
        assert await asyncio.to_thread(tier.serves) == 200

        assert await asyncio.to_thread(read_until_closed, idle) == b""


async def test_a_header_block_trickled_byte_by_byte_is_cut_off(tier: Tier) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400  # 400 x 50 ms: 20 s without a timeout
    with connect(tier.port) as slow:
        started = asyncio.create_task(asyncio.to_thread(trickle, slow, head))
        assert await asyncio.to_thread(tier.serves) == 200

        assert await started


def read_one_answer(sock: socket.socket) -> bytes:
    """One whole answer with a Content-Length from a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


async def test_the_next_header_block_on_a_kept_connection_trickled_is_cut_off(tier: Tier) -> None:
    method, path, body = tier.healthy
    first = build_request(method, path, [("Content-Type", "application/json")], body, tier.port)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400  # 400 x 50 ms: 20 s without a timeout
    with connect(tier.port) as slow:
        slow.sendall(first.replace(b"Connection: close\r\n", b""))
        assert b" 200 " in await asyncio.to_thread(read_one_answer, slow)  # kept alive, its header timer stopped

        assert await asyncio.to_thread(trickle, slow, head)


async def test_a_body_that_stalls_gets_a_408_and_the_connection_closes(reading_tier: Tier) -> None:
    tier = reading_tier
    head = [("Content-Type", "application/json"), ("Content-Length", "100"), *AUTHORIZATION.items()]
    request = build_request("POST", tier.post_path, head, b'{"prompt": "Hi', tier.port).replace(
        b"Connection: close\r\n", b""
    )
    with connect(tier.port) as stalled:
        stalled.sendall(request)
        assert await asyncio.to_thread(tier.serves) == 200

        answer = parse_answer(await asyncio.to_thread(read_until_closed, stalled))

    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    detail = json.loads(answer.body)
    assert "did not arrive within 0.3 s" in detail.get("detail", detail.get("message", ""))


ACCESS_LOGS = {
    "rest": "lambdallm.rest.access",
    "apigw": "lambdallm.local_cloud.apigateway",
}  # the local Bedrock logs none


async def test_a_body_that_stalls_is_counted_and_logged_as_the_408_it_was_answered(reading_tier: Tier, caplog) -> None:
    tier = reading_tier
    caplog.set_level(logging.INFO, logger=ACCESS_LOGS.get(tier.name, "lambdallm"))
    head = [("Content-Type", "application/json"), ("Content-Length", "100"), *AUTHORIZATION.items()]
    request = build_request("POST", tier.post_path, head, b'{"prompt": "Hi', tier.port)
    with connect(tier.port) as stalled:
        stalled.sendall(request)
        assert parse_answer(await asyncio.to_thread(read_until_closed, stalled)).status == 408

    def posted() -> set[str]:
        scraped = scrape(f"http://127.0.0.1:{tier.metrics_port}/metrics")
        return {
            dict(labels)["status"]
            for (name, labels) in scraped
            if name == tier.requests_metric and dict(labels)["method"] == "POST"
        }

    # The app ends after the answer went out: wait for its count (not for a time).
    statuses = await asyncio.to_thread(poll, posted, lambda found: bool(found - {"200"}))
    assert statuses - {"200"} == {"408"}  # not 499 (the client left) nor 500

    def logged() -> set[int]:
        lines = [r for r in caplog.records if r.name == ACCESS_LOGS.get(tier.name)]
        return {getattr(r, "status", 200) for r in lines} - {200}

    if tier.name in ACCESS_LOGS:
        assert await asyncio.to_thread(poll, logged, bool) == {408}


async def test_an_idle_keep_alive_connection_is_closed(tier: Tier) -> None:
    method, path, body = tier.healthy
    request = build_request(method, path, [("Content-Type", "application/json")], body, tier.port)
    with connect(tier.port) as kept:
        kept.sendall(request.replace(b"Connection: close\r\n", b""))

        answer = parse_answer(await asyncio.to_thread(read_until_closed, kept))  # ends when the server closes

    assert answer.status == 200


@pytest.mark.parametrize("name", TIERS)
async def test_connections_beyond_max_connections_are_closed_at_once(name: str) -> None:
    async with running(name, max_connections=8, header_timeout_s=30) as tier:
        held = [connect(tier.port) for _ in range(8)]
        try:
            assert await asyncio.to_thread(refused_at_once, tier)
        finally:
            for sock in held:
                sock.close()

        assert await asyncio.to_thread(tier.serves) == 200


def refused_at_once(tier: Tier) -> bool:
    """True if a connection to `tier` is closed before it answers anything: reset while connecting (the server may
    accept and drop it before the client's connect returns), on sending, or closed with no byte read."""
    try:
        extra = connect(tier.port)
    except ConnectionResetError:
        return True
    with extra:
        method, path, body = tier.healthy
        with contextlib.suppress(OSError):  # the reset may come first
            extra.sendall(build_request(method, path, [("Content-Type", "application/json")], body, tier.port))
        return read_until_closed(extra) == b""


def never_read(port: int, request: bytes, count: int) -> socket.socket:
    """A connection that pipelines `count` copies of `request` and never reads an answer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request * count)
    return sock


async def test_a_client_that_never_reads_its_answers_is_dropped() -> None:
    async with running("rest", **SHORT) as tier:
        request = b"GET /ui/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n"  # about 1.4 MB each
        with never_read(tier.port, request, 20) as reader:
            assert await asyncio.to_thread(tier.serves) == 200

            assert await asyncio.to_thread(closed_by_server, reader)
