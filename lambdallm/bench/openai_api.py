"""/v1/chat/completions beside /query, on the instant engine: one client's p50 and p99, and requests/s at many
connections, the two routes interleaved within each repetition with the same conversation (issue 20)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdallm import settings
from lambdallm.bench.loadgen import LoadResult, wrk
from lambdallm.bench.plan import Plan
from lambdallm.bench.stats import Spread
from lambdallm.stack import Stack

PROMPT = "Tell me a story about a lighthouse keeper."
ROUTES = ("query", "v1")
TIMEOUT_S = 60.0


def bodies(max_tokens: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """{route: (path, body)}: the same one-turn conversation as /query takes it and as OpenAI's chat takes it."""
    messages = [{"role": "user", "content": PROMPT}]
    model = settings.load(settings.CloudSettings, "local-cloud").model_id
    common = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
    return {"query": ("/query", common), "v1": ("/v1/chat/completions", common | {"model": model})}


@dataclass
class OpenAIFigures:
    """Per route: the one-client runs and the many-connection runs, one of each per repetition."""

    c1: dict[str, list[LoadResult]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    loaded: dict[str, list[LoadResult]] = field(default_factory=lambda: {r: [] for r in ROUTES})

    def as_dict(self) -> dict[str, Any]:
        """Each route's p50, p99 (one client) and requests/s (many), and /v1 over /query for each (issue 20's
        target: within 10 %), every figure a spread over the repetitions."""
        figures: dict[str, Any] = {
            route: {
                "p50_ms": Spread.of([r.p50_ms for r in self.c1[route]]).as_dict(3),
                "p99_ms": Spread.of([r.p99_ms for r in self.c1[route]]).as_dict(3),
                "rps_many": Spread.of([r.rps for r in self.loaded[route]]).as_dict(1),
                "errors_many": Spread.of([r.errors for r in self.loaded[route]]).as_dict(),
            }
            for route in ROUTES
        }
        pairs = list(zip(self.c1["v1"], self.c1["query"], strict=True))
        loaded = list(zip(self.loaded["v1"], self.loaded["query"], strict=True))
        figures["v1_over_query"] = {
            "p50": Spread.of([v.p50_ms / q.p50_ms for v, q in pairs]).as_dict(3),
            "p99": Spread.of([v.p99_ms / q.p99_ms for v, q in pairs]).as_dict(3),
            "rps_many": Spread.of([v.rps / q.rps for v, q in loaded if q.rps]).as_dict(3),
        }
        return figures


def measure_openai(stack: Stack, plan: Plan, step: Callable[[str], None]) -> OpenAIFigures:
    """/query and /v1/chat/completions in turn (the first of the two alternating between repetitions), at one
    client for `overhead_s`, then at `load_connections` for `load_s`."""
    figures = OpenAIFigures()
    base = f"http://127.0.0.1:{stack.ports.rest}"
    routes = bodies(plan.overhead_tokens)
    for rep in range(plan.repetitions):
        order = ROUTES if rep % 2 == 0 else ROUTES[::-1]
        step(f"/v1/chat/completions beside /query, c1 and c{plan.load_connections} ({rep + 1}/{plan.repetitions})")
        for connections, duration_s, runs in (
            (1, plan.overhead_s, figures.c1),
            (plan.load_connections, plan.load_s, figures.loaded),
        ):
            for route in order:
                path, body = routes[route]
                result = wrk(base + path, body, connections, duration_s, TIMEOUT_S, None, stack.auth_headers)
                runs[route].append(result)
    return figures
