"""How long and how often the bench measures: the full plan of `make bench`, and a tiny one for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Durations, repetitions and token counts of one bench run."""

    repetitions: int = 3
    overhead_s: float = 5.0  # each entry point, concurrency 1, instant engine
    overhead_tokens: int = 16
    load_s: float = 10.0  # the REST tier at 64 connections
    load_connections: int = 64
    scale_out_s: float = 6.0  # each of the scale-out's three runs (direct, HAProxy + 1 and + 2 REST replicas)
    burst_probe_s: float = 2.0  # one client at the local Bedrock just before and just after each loaded run
    generation_tokens: int = 128
    single_requests: int = 2  # the real model, one client: requests in a row
    clients: int = 8  # the real model, many clients: one request each, all at once
    ttft_samples: int = 16  # time to first token, one client: short streams in a row, each path in turn
    ttft_tokens: int = 4  # tokens of each of those short streams
    stream_requests: int = 2  # the chain streaming `generation_tokens` tokens to one client, for its pace
    abandoned_streams: int = 10_000  # streams abandoned at random points, instant engine: each tier's RSS growth
    # Abandoned before the RSS is first read: a tier's RSS climbs over the first few thousand (allocator arenas at
    # peak concurrency) and then stays; a leak goes on growing after it.
    abandon_warm_up: int = 4000
    # The bare grpc.aio floor (lambdallm/bench/grpc_floor.py): unary calls, 64 at once, then streams of
    # `generation_tokens` messages in a row at the model's pace.
    floor_calls: int = 4000
    floor_streams: int = 8
    generation_cap_s: float = 900.0  # batches end when answered; this only bounds a stuck run
    # Bounded queue of the local Bedrock: room for every load connection, so throttling is not what is measured.
    queue_size: int = 64

    @property
    def steps(self) -> int:
        """Progress-bar steps: two stack starts, the load runs (the REST tier's under attack, its baseline
        without issue 18's edge, the one-hop gateway at one and many clients and the Server-Timing client
        included), /v1/chat/completions beside /query, the bare grpc.aio floor, llama-server's start, the
        generation runs (direct, time to first token, streamed pace, chain and llama-server at 1 and many clients,
        whole and streamed), the abandoned streams, the memory reading, tracing off beside on, and the scale-out
        (its start, then one step a repetition)."""
        return 2 + self.repetitions * (4 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 2) + 1 + self.repetitions * 9 + 1 + 1 + 1


FULL = Plan()
QUICK = Plan(
    repetitions=1,
    overhead_s=1.0,
    load_s=1.0,
    load_connections=8,
    scale_out_s=1.0,
    burst_probe_s=0.3,
    generation_tokens=8,
    single_requests=1,
    clients=2,
    ttft_samples=3,
    ttft_tokens=2,
    stream_requests=1,
    abandoned_streams=200,
    abandon_warm_up=50,
    floor_calls=256,
    floor_streams=1,
)
