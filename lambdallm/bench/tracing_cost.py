"""What tracing costs (issue 23): the plumbing on the instant engine, the REST tier's requests/s at many
connections and one client's p50, with tracing off (the bench's chain as shipped) and on at sampling ratio 1.0
(every tier writing JSON lines to a file), both chains up at once and measured in turn within each repetition."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lambdallm.bench.entry import load
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.plan import Plan
from lambdallm.bench.stats import Spread
from lambdallm.stack import Ports, Stack

PROMPT = "Tell me a story about a lighthouse keeper."
MODES = ("off", "on")


def traced_env(spans: Path) -> dict[str, str]:
    """Every tier tracing every request (ratio 1.0) into `spans`, as JSON lines."""
    env: dict[str, str] = {}
    for tier in ("REST", "PROXY", "LOCAL_CLOUD"):
        env |= {f"LAMBDALLM_{tier}_TRACE_EXPORTER": "file", f"LAMBDALLM_{tier}_TRACE_FILE": str(spans)}
        env[f"LAMBDALLM_{tier}_TRACE_RATIO"] = "1.0"
    return env


@dataclass
class TracingFigures:
    """Per mode, the one-client runs and the many-connection runs, one of each per repetition."""

    c1: dict[str, list[LoadResult]] = field(default_factory=lambda: {m: [] for m in MODES})
    loaded: dict[str, list[LoadResult]] = field(default_factory=lambda: {m: [] for m in MODES})

    def as_dict(self) -> dict[str, Any]:
        """requests/s (many connections) and p50 (one client) off and on, and on over off within each repetition
        (issue 23's target: requests/s at most 10 % lower, a ratio of at least 0.9)."""
        figures: dict[str, Any] = {
            f"{mode}_{key}": Spread.of([getattr(r, attr) for r in runs[mode]]).as_dict(digits)
            for mode in MODES
            for key, attr, runs, digits in (("rps_many", "rps", self.loaded, 1), ("p50_ms", "p50_ms", self.c1, 3))
        }
        loaded = list(zip(self.loaded["on"], self.loaded["off"], strict=True))
        pairs = list(zip(self.c1["on"], self.c1["off"], strict=True))
        figures["on_over_off_rps_many"] = Spread.of([on.rps / off.rps for on, off in loaded if off.rps]).as_dict(3)
        figures["on_over_off_p50"] = Spread.of([on.p50_ms / off.p50_ms for on, off in pairs if off.p50_ms]).as_dict(3)
        figures["errors_many"] = sum(r.errors for mode in MODES for r in self.loaded[mode])
        return figures


def measure_tracing(stack: Stack, plan: Plan, log: IO[str], step: Callable[[str], None]) -> TracingFigures:
    """Start a second instant chain with tracing on beside `stack` (tracing off), then per repetition measure
    both in turn (the first alternating), one client for `overhead_s` and `load_connections` for `load_s`."""
    figures = TracingFigures()
    with tempfile.TemporaryDirectory(prefix="lambdallm-bench-traces-") as folder:
        env = dict(stack.extra_env) | traced_env(Path(folder) / "spans.jsonl")
        with Stack(Ports.any(), engine="instant", log=log, extra_env=env) as traced:
            chains = {"off": stack, "on": traced}
            for rep in range(plan.repetitions):
                step(f"tracing off and on, c1 and c{plan.load_connections} ({rep + 1}/{plan.repetitions})")
                for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                    chain = chains[mode]
                    figures.c1[mode].append(load(chain, "rest", PROMPT, plan.overhead_tokens, 1, plan.overhead_s))
                    runs = figures.loaded[mode]
                    runs.append(load(chain, "rest", PROMPT, plan.overhead_tokens, plan.load_connections, plan.load_s))
    return figures
