"""The bench's per-tier split of one client's requests (issue 28) reads each answer's Server-Timing as the REST tier
writes it, and refuses an answer it cannot split rather than counting it as zero."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lambdallm.bench.tier_timing import PARTS, tier_p50_ms, timed_requests

TIMINGS = [
    "total;dur=3.0, rest;dur=1.1, proxy;dur=0.6, backend;dur=1.3, model;dur=0.0",
    "total;dur=5.0, rest;dur=1.3, proxy;dur=0.8, backend;dur=2.9, model;dur=0.0",
]


class FakeRest(http.server.ThreadingHTTPServer):
    """Answers POST /query with each of `timings` in turn (then the last again), with `status`; records the
    requests' bodies and keys."""

    def __init__(self, timings: list[str], status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.timings, self.status = timings, status
        self.bodies: list[Any] = []
        self.keys: list[str | None] = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the bench's client expects

    def do_POST(self) -> None:
        server: FakeRest = self.server  # type: ignore[assignment]
        server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        server.keys.append(self.headers.get("Authorization"))
        timing = server.timings[min(len(server.bodies), len(server.timings)) - 1]
        body = b'{"text": "x"}'
        self.send_response(server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server-Timing", timing)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeRest] = []

    def start(timings: list[str], status: int = 200) -> FakeRest:
        server = FakeRest(timings, status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_each_answer_is_split_into_the_tiers_parts(serve: Any) -> None:
    server = serve(TIMINGS)
    body = {"prompt": "p", "max_tokens": 16, "temperature": 0.0}

    samples = timed_requests(server.server_address[1], {"Authorization": "Bearer k"}, body, 0.2)

    count = len(server.bodies)
    assert count >= 2 and server.bodies == [body] * count and server.keys == ["Bearer k"] * count
    assert set(samples) == set(PARTS) and all(len(samples[part]) == count for part in PARTS)
    assert samples["rest"][:2] == [1.1, 1.3] and samples["backend"][:2] == [1.3, 2.9]
    assert samples["total"][-1] == 5.0


def test_an_answer_without_every_part_is_an_error_not_a_zero(serve: Any) -> None:
    server = serve(["total;dur=3.0, rest;dur=3.0"])  # what a REST tier whose proxy said nothing would write

    with pytest.raises(RuntimeError, match="Server-Timing"):
        timed_requests(server.server_address[1], {}, {"prompt": "p"}, 0.2)


def test_a_failed_answer_is_an_error(serve: Any) -> None:
    server = serve(TIMINGS, status=502)

    with pytest.raises(RuntimeError, match="502"):
        timed_requests(server.server_address[1], {}, {"prompt": "p"}, 0.2)


def test_each_part_is_the_p50_within_a_run_spread_over_the_runs() -> None:
    runs = [
        {part: [1.0, 2.0, 9.0] for part in PARTS},
        {part: [3.0, 4.0, 5.0] for part in PARTS} | {"model": [0.0, 0.0, 0.0]},
    ]

    figures = tier_p50_ms(runs)

    assert figures["rest"] == {"median": 3.0, "min": 2.0, "max": 4.0, "n": 2}
    assert figures["model"] == {"median": 1.0, "min": 0.0, "max": 2.0, "n": 2}
