"""A bench-only REST tier without issue 18's edge, beside the shipped one in the same stack, so that one run
measures what admission and the connection limits add to the REST hop (`rest_hop_ms` in latest.json).

The baseline is the shipped app (API keys, metrics, request context, the proxy's token, the same proxy) with two
parts left out: the `Admission` middleware (the in-flight limit, which reads the body before validation) and the
bounded HTTP protocol (header, body and write timeouts, max_connections): uvicorn's stock httptools protocol
serves it instead. Run as `python -m lambdallm.bench.rest_baseline` with the REST tier's settings; never shipped
as a tier.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lambdallm.bench.beside import beside
from lambdallm.bench.entry import drain
from lambdallm.stack import Stack

LOG_NAME = "rest-base"  # the baseline's lines in stack.log
Samples = list[float]


def serve() -> int:
    """Serve the REST tier without admission, on uvicorn's stock HTTP protocol, until SIGTERM (the REST tier's
    settings: config/rest.toml and LAMBDALLM_REST_*)."""
    from lambdallm import logs, settings, tier
    from lambdallm.rest.app import create_app, uvicorn_server

    tier.follow_supervisor()
    config = settings.load(settings.RestSettings, "rest")
    logs.configure("rest")
    app = create_app(config, admission=False)
    sock = tier.bind_tcp(config.host, config.port)
    tier.listen(sock)
    server = uvicorn_server(config, app, http="httptools")
    tier.settle()
    server.run(sockets=[sock])
    return 0 if server.started else 1


@contextmanager
def baseline_rest(stack: Stack) -> Iterator[int]:
    """A baseline REST tier in front of `stack`'s proxy, with its keys and token, on a free port: that port, once
    it has answered one query; stopped on exit."""
    with rest_beside(stack, ["lambdallm.bench.rest_baseline"], LOG_NAME) as port:
        yield port


@contextmanager
def rest_beside(stack: Stack, module: list[str], log_name: str) -> Iterator[int]:
    """A REST tier run as `python -m *module` with `stack`'s REST settings (its proxy, keys and token) on a free
    port, its lines in the stack's log as `log_name`: that port, once it has answered one query; stopped on exit.
    The baseline, and the bench's second REST replica (lambdallm/bench/scale_out.py)."""
    with beside(stack, module, log_name, "rest", {"LAMBDALLM_REST_PORT": "0"}) as (port, _):
        drain(stack, 60.0, f"http://127.0.0.1:{port}")  # its imports, channel and first-call paths warm
        yield port


def paired(stack: Stack, ports: tuple[int, int], body: dict[str, Any], duration_s: float) -> tuple[Samples, Samples]:
    """One client alternating one request to the REST tier at `ports[0]` and one to `ports[1]` (which goes first
    swapping with each pair), each on its own keep-alive connection, for `duration_s` seconds: each one's latencies
    in ms. Noise that comes and goes within a run falls on both alike, which two runs one after the other do not
    give on a busy machine."""
    data = json.dumps(body)
    headers = {"Content-Type": "application/json"} | stack.auth_headers
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
    samples: tuple[Samples, Samples] = ([], [])
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < duration_s:
            order = (0, 1) if len(samples[0]) % 2 == 0 else (1, 0)
            for index in order:
                sent = time.perf_counter()
                connections[index].request("POST", "/query", data, headers)
                with connections[index].getresponse() as answer:
                    answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"the REST tier on port {ports[index]} answered {answer.status}")
                samples[index].append(1000 * (time.perf_counter() - sent))
    finally:
        for connection in connections:
            connection.close()
    return samples


if __name__ == "__main__":
    sys.exit(serve())
