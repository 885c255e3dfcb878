"""The scale-out (issue 24), on the instant engine: the REST tier's requests/s at many connections entered
directly, through HAProxy (deploy/haproxy/haproxy.cfg on loopback) in front of that one REST replica, and through
HAProxy in front of it and a second replica (both over the stack's one proxy), the three in turn within each
repetition. On 2 cores, two replicas over one shows what balancing costs, not a speed-up: the cores are full."""

from __future__ import annotations

import contextlib
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lambdallm.bench.entry import drain, load
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.memory import cpu_s
from lambdallm.bench.plan import Plan
from lambdallm.bench.rest_baseline import rest_beside
from lambdallm.bench.stats import Spread
from lambdallm.debian_servers import MissingServer, debian_binary, free_port, haproxy, haproxy_config
from lambdallm.stack import Stack

PROMPT = "Tell me a story about a lighthouse keeper."
MODES = ("direct", "one_replica", "two_replicas")  # the first is the REST tier without HAProxy


@dataclass
class ScaleOutFigures:
    """Per mode the many-connection runs, one per repetition, and HAProxy's CPU ms per answered request behind
    each balanced run; or why the section was skipped."""

    loaded: dict[str, list[LoadResult]] = field(default_factory=lambda: {m: [] for m in MODES})
    haproxy_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES[1:]})
    # Per two-replica run: the share of its answers that the second replica gave (its output tokens over both's).
    second_share: list[float] = field(default_factory=list)
    connections: int = 0
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        """requests/s of each mode, two replicas over one and one replica over direct within each repetition,
        failed requests, and HAProxy's CPU per request; `{"skipped": why}` when HAProxy was not there."""
        if self.skipped:
            return {"skipped": self.skipped}
        figures: dict[str, Any] = {
            f"{mode}_rps_many": Spread.of([r.rps for r in self.loaded[mode]]).as_dict(1) for mode in MODES
        }
        for name, top, bottom in (("two_over_one", MODES[2], MODES[1]), ("one_over_direct", MODES[1], MODES[0])):
            pairs = zip(self.loaded[top], self.loaded[bottom], strict=True)
            figures[f"{name}_rps_many"] = Spread.of([t.rps / b.rps for t, b in pairs if b.rps]).as_dict(3)
        figures["haproxy_cpu_ms_per_request"] = {
            mode: Spread.of(values).as_dict(3) for mode, values in self.haproxy_cpu_ms.items()
        }
        figures["two_replicas_second_share"] = Spread.of(self.second_share).as_dict(3)
        figures["errors_many"] = sum(r.errors for runs in self.loaded.values() for r in runs)
        figures["errors_by_mode"] = {mode: error_kinds(runs) for mode, runs in self.loaded.items()}
        figures["connections"] = self.connections
        return figures


def error_kinds(runs: list[LoadResult]) -> dict[str, int]:
    """The runs' errors by kind (a status such as "503", or a socket error: "read", "timeout"...), summed."""
    total: Counter[str] = Counter()
    for run in runs:
        total.update(run.error_kinds)
    return dict(sorted(total.items()))


def markdown_row(scale: dict[str, Any], cell: Callable[[dict[str, float]], str]) -> tuple[str, str]:
    """The row of latest.md: each mode's requests/s and the two ratios, each as `cell` writes a spread."""
    name = "REST, instant model, many connections, requests/s: direct / HAProxy + 1 / + 2 replicas; 2 / 1; 1 / direct"
    if "skipped" in scale:
        return name, f"skipped: {scale['skipped']}"
    rates = " / ".join(cell(scale[f"{mode}_rps_many"]) for mode in MODES)
    return name, f"{rates}; {cell(scale['two_over_one_rps_many'])}; {cell(scale['one_over_direct_rps_many'])}"


def measure_scale_out(stack: Stack, plan: Plan, step: Callable[[str], None]) -> ScaleOutFigures:
    """Start a second REST replica beside `stack`'s and two HAProxys (one balancing over `stack`'s replica alone,
    one over both), then per repetition load each of the three for `scale_out_s` at `load_connections`, the order
    rotating. Skipped, saying why, where HAProxy is missing and cannot be installed."""
    step("scale-out: HAProxy and a second REST replica")
    figures = ScaleOutFigures(connections=plan.load_connections)
    try:
        debian_binary("haproxy", "haproxy")
    except MissingServer as exc:
        figures.skipped = str(exc)
        return figures
    with (
        tempfile.TemporaryDirectory(prefix="lambdallm-bench-haproxy-") as folder,
        rest_beside(stack, ["lambdallm", "rest"], "rest-2") as second,
        contextlib.ExitStack() as balancers,
    ):
        ports, pids = {MODES[0]: stack.ports.rest}, {}
        for mode, servers in ((MODES[1], [stack.ports.rest]), (MODES[2], [stack.ports.rest, second])):
            ports[mode] = free_port()
            directory = Path(folder) / mode
            directory.mkdir()
            balancer = balancers.enter_context(haproxy(haproxy_config(ports[mode], servers), directory, ports[mode]))
            pids[mode] = balancer.pid
            drain(stack, 60.0, f"http://127.0.0.1:{ports[mode]}")
        replicas = (stack.ports.rest, second)
        for rep in range(plan.repetitions):
            step(f"scale-out: direct, HAProxy + 1 and + 2 REST replicas ({rep + 1}/{plan.repetitions})")
            for mode in MODES[rep % 3 :] + MODES[: rep % 3]:
                cpu = cpu_s(pids[mode]) if mode in pids else 0.0
                tokens = [output_tokens(port) for port in replicas]  # what each replica had answered before
                many, duration_s = plan.load_connections, plan.scale_out_s
                result = load(stack, "rest", PROMPT, plan.overhead_tokens, many, duration_s, rest_port=ports[mode])
                figures.loaded[mode].append(result)
                if mode in pids:
                    figures.haproxy_cpu_ms[mode].append(1000 * (cpu_s(pids[mode]) - cpu) / max(result.ok, 1))
                if mode == MODES[2]:
                    first, other = (output_tokens(port) - before for port, before in zip(replicas, tokens, strict=True))
                    figures.second_share.append(other / (first + other) if first + other else 0.0)
    return figures


def output_tokens(rest_port: int) -> float:
    """The output tokens the REST replica on `rest_port` has answered so far (its own /metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lambdallm_rest_tokens_total" and sample.labels.get("type") == "output":
                return sample.value
    return 0.0
