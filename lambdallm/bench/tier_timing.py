"""One client's requests through the whole chain, split by the tiers themselves: the Server-Timing of each answer
(issue 23) names the time spent in the REST tier, the proxy, the backend and the model. Issue 28's one-client p50
per hop, without any load generator's own time in it: the entry-point differences (`hop_p50_ms_c1`) take the
gRPC entry from locust, whose Python client adds its own time to the proxy's hop and takes it from the REST one."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from lambdallm.bench.stats import Spread
from llm_wire.timing import HEADER, TIERS, parse_timing

PARTS = ("total", *TIERS)  # total, rest, proxy, backend, model: what a REST answer's Server-Timing holds
Samples = dict[str, list[float]]  # part -> ms, an answer each


def timed_requests(port: int, headers: dict[str, str], body: dict[str, Any], duration_s: float) -> Samples:
    """POST /query to the REST tier on `port` from one keep-alive client for `duration_s` seconds: each part of
    each answer's Server-Timing in ms, by part. An answer that is not a 200 with every part is an error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload, fields = json.dumps(body), {"Content-Type": "application/json"} | headers
    samples: Samples = {part: [] for part in PARTS}
    deadline = time.monotonic() + duration_s
    try:
        while time.monotonic() < deadline:
            connection.request("POST", "/query", payload, fields)
            with connection.getresponse() as answer:
                answer.read()
                parts = parse_timing(answer.getheader(HEADER) or "")
                if answer.status != 200 or not set(PARTS) <= set(parts):
                    raise RuntimeError(f"the REST tier answered {answer.status} with {HEADER} {parts}")
            for part in PARTS:
                samples[part].append(parts[part])
    finally:
        connection.close()
    return samples


def tier_p50_ms(runs: list[Samples]) -> dict[str, dict[str, float]]:
    """Each part's p50 within each run, spread over the runs (the tiers round each part to 0.1 ms)."""
    return {part: Spread.of([statistics.median(run[part]) for run in runs]).as_dict() for part in PARTS}


def markdown_row(figures: dict[str, dict[str, float]], cell: Callable[[dict[str, float]], str]) -> tuple[str, str]:
    """The bench table's row: each tier's p50 as the tiers' Server-Timing split it."""
    return (
        "one client p50 per tier, from each answer's Server-Timing: REST / proxy / backend / model (total)",
        " / ".join(cell(figures[part]) for part in TIERS) + f" ms ({cell(figures['total'])} ms)",
    )
