"""Figures of the chain with the instant engine: each hop's latency at one client, and the REST tier under load."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdallm.bench import one_hop, tier_timing
from lambdallm.bench.abandon import rss_trend_mb
from lambdallm.bench.attack import Attack
from lambdallm.bench.entry import ENTRY_POINTS, drain, load, probe_bedrock, query_body
from lambdallm.bench.grpc_floor import FloorRun, floor_cpu_ms
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.memory import cpu_s
from lambdallm.bench.plan import Plan
from lambdallm.bench.rest_baseline import baseline_rest, paired
from lambdallm.bench.stats import Spread, percentile
from lambdallm.stack import Stack

PROMPT = "Tell me a story about a lighthouse keeper."
TIERS = {"rest": "rest", "proxy": "proxy", "cloud": "local-cloud"}  # key in latest.json -> the Stack's tier
# After a burst, the tiers still finish the requests the load generator left unanswered when it stopped; a probe
# request sent in that window waits behind them. Samples sent later than this are the settled latency.
SETTLE_S = 0.1


@dataclass(frozen=True)
class BurstProbe:
    """One client at the local Bedrock just before a 64-connection burst through the chain and just after it."""

    quiet: list[tuple[float, float]]  # (seconds from the probe's start, latency ms), before the burst
    after: list[tuple[float, float]]  # the same, from the moment the burst's load generator stopped

    @property
    def quiet_p99_ms(self) -> float:
        return percentile([ms for _, ms in self.quiet], 99)

    @property
    def first_ms(self) -> float:
        return self.after[0][1]

    @property
    def settled_p99_ms(self) -> float:
        return percentile([ms for sent, ms in self.after if sent >= SETTLE_S], 99)


@dataclass
class PlumbingFigures:
    """Latency per entry point at concurrency 1, and requests/s and errors of the REST tier at many connections."""

    runs: dict[str, list[LoadResult]] = field(default_factory=lambda: {e: [] for e in ENTRY_POINTS})
    # The same one client at the bench's baseline REST tier, without issue 18's edge (lambdallm/bench/rest_baseline.py).
    without_edge: list[LoadResult] = field(default_factory=list)
    # Per repetition: one client alternating requests between the shipped REST tier and the baseline (latencies, ms).
    paired: list[tuple[list[float], list[float]]] = field(default_factory=list)
    loaded: list[LoadResult] = field(default_factory=list)
    # Per loaded run: CPU milliseconds each tier's processes spent per answered request.
    cpu_ms_per_request: list[dict[str, float]] = field(default_factory=list)
    bursts: list[BurstProbe] = field(default_factory=list)
    # One key holder at the REST tier while 200 unauthenticated connections attack it (lambdallm/bench/attack.py).
    attacked: list[LoadResult] = field(default_factory=list)
    # Each tier's RSS growth in MiB over the plan's abandoned streams (lambdallm/bench/abandon.py), after a warm-up.
    abandoned_growth_mb: dict[str, float] = field(default_factory=dict)
    abandoned_streams: int = 0
    # Per repetition: a bare grpc.aio client's and server's CPU ms per call and per streamed message
    # (lambdallm/bench/grpc_floor.py), the floor under the REST tier (a client) and the proxy (a server).
    grpc_floor: list[dict[str, dict[str, float]]] = field(default_factory=list)
    # Issue 28's reference, a one-hop gateway over the same local Bedrock (lambdallm/bench/one_hop.py): one client
    # beside the chain's REST entry, 64 connections beside its loaded run, and the CPU ms per request of the
    # gateway's process and of the local cloud (its Bedrock) during the latter.
    one_hop_c1: list[LoadResult] = field(default_factory=list)
    one_hop_loaded: list[LoadResult] = field(default_factory=list)
    one_hop_cpu_ms: list[dict[str, float]] = field(default_factory=list)
    # Per repetition: one client's requests through the chain, each answer's Server-Timing parts (tier_timing.py).
    server_timing: list[tier_timing.Samples] = field(default_factory=list)

    def one_hop(self) -> dict[str, Any]:
        """The reference gateway's one-client p50, 64-connection requests/s, failed requests and CPU per request
        (its process and the local cloud's), and the chain's over it within each repetition (issue 28)."""
        c1, loaded, cpu = self.one_hop_c1, self.one_hop_loaded, self.one_hop_cpu_ms
        chain_cpu, one_hop_cpu = ([sum(run.values()) for run in runs] for runs in (self.cpu_ms_per_request, cpu))

        def over(mine: list[float], reference: list[float]) -> dict[str, float]:
            return Spread.of([m / r for m, r in zip(mine, reference, strict=True)]).as_dict()

        return {
            "p50_ms_c1": Spread.of([r.p50_ms for r in c1]).as_dict(),
            "rps_c64": Spread.of([r.rps for r in loaded]).as_dict(1),
            "errors": Spread.of([a.errors + b.errors for a, b in zip(c1, loaded, strict=True)]).as_dict(),
            "cpu_ms_per_request": {
                key: Spread.of([run[key] for run in cpu]).as_dict(3) for key in ("gateway", "cloud")
            },
            "chain_over_one_hop": {
                "p50_c1": over([r.p50_ms for r in self.runs["rest"]], [r.p50_ms for r in c1]),
                "rps_c64": over([r.rps for r in self.loaded], [r.rps for r in loaded]),
                "cpu_ms_per_request": over(chain_cpu, one_hop_cpu),
            },
        }

    def growth_mb_per_10k_abandoned(self) -> dict[str, float]:
        """Each tier's RSS growth in MiB per 10,000 abandoned streams (issue 26: at most 2 each)."""
        scale = 10_000 / max(self.abandoned_streams, 1)
        return {key: round(self.abandoned_growth_mb[tier] * scale, 2) for key, tier in TIERS.items()}

    def rest_hop_ms(self) -> dict[str, Any]:
        """The REST hop (entering at REST minus entering at the proxy, within each repetition), p50 and p99, for
        the REST tier as shipped and for the baseline without issue 18's edge, shipped over baseline (p50), and
        shipped minus baseline (p50 and p99) as one client alternating between them saw them."""
        grpc = self.runs["grpc"]

        def hop(runs: list[LoadResult]) -> dict[str, Spread]:
            return {
                "p50": Spread.of([r.p50_ms - g.p50_ms for r, g in zip(runs, grpc, strict=True)]),
                "p99": Spread.of([r.p99_ms - g.p99_ms for r, g in zip(runs, grpc, strict=True)]),
            }

        pairs = list(zip(self.runs["rest"], self.without_edge, grpc, strict=True))
        return {
            "shipped": hop(self.runs["rest"]),
            "without_edge": hop(self.without_edge),
            "shipped_over_without_edge_p50": Spread.of(
                [(s.p50_ms - g.p50_ms) / (w.p50_ms - g.p50_ms) for s, w, g in pairs]
            ),
            # The edge's own cost, from one client alternating between the two tiers request by request.
            "shipped_minus_without_edge": {
                f"p{pct}": Spread.of([percentile(s, pct) - percentile(w, pct) for s, w in self.paired])
                for pct in (50, 99)
            },
        }

    def under_attack_ms(self) -> dict[str, Spread]:
        """A key holder's p50 and p99 under the attack, and its p99 minus the p99 of the same client without it."""
        quiet = self.runs["rest"]
        return {
            "p50": Spread.of([r.p50_ms for r in self.attacked]),
            "p99": Spread.of([r.p99_ms for r in self.attacked]),
            "p99_minus_quiet_p99": Spread.of([a.p99_ms - q.p99_ms for a, q in zip(self.attacked, quiet, strict=True)]),
            "errors": Spread.of([r.errors for r in self.attacked]),
        }

    def after_burst_ms(self) -> dict[str, Spread]:
        """The local Bedrock's latency at one client before and after each burst (see BurstProbe)."""
        return {
            "quiet_p99": Spread.of([b.quiet_p99_ms for b in self.bursts]),
            "first": Spread.of([b.first_ms for b in self.bursts]),
            "settled_p99": Spread.of([b.settled_p99_ms for b in self.bursts]),
            "settled_p99_over_quiet": Spread.of([b.settled_p99_ms / b.quiet_p99_ms for b in self.bursts]),
        }

    def cpu_ms(self) -> dict[str, Spread]:
        """{tier: spread of CPU ms per request} over the loaded runs, with the whole chain's sum as `chain`."""
        tiers = {tier: Spread.of([run[tier] for run in self.cpu_ms_per_request]) for tier in TIERS}
        return tiers | {"chain": Spread.of([sum(run.values()) for run in self.cpu_ms_per_request])}

    def overhead_ms(self) -> dict[str, dict[str, Spread]]:
        """{entry: {p50, p99}}, each a spread over the repetitions."""
        return {
            entry: {
                "p50": Spread.of([r.p50_ms for r in runs]),
                "p99": Spread.of([r.p99_ms for r in runs]),
            }
            for entry, runs in self.runs.items()
        }

    def percentiles_ms(self) -> dict[str, dict[str, float]]:
        """{entry: {percentile: ms}}, the median over repetitions of each percentile (for the plot)."""
        return {
            entry: {pct: statistics.median(r.percentiles_ms[pct] for r in runs) for pct in runs[0].percentiles_ms}
            for entry, runs in self.runs.items()
        }


def _one_hop_c1(
    stack: Stack, plan: Plan, step: Callable[[str], None], rep: int, gateway: one_hop.Gateway, f: PlumbingFigures
) -> None:
    step(f"one-hop gateway c1, the reference ({rep + 1}/{plan.repetitions})")
    f.one_hop_c1.append(one_hop.load(gateway, stack, PROMPT, plan.overhead_tokens, 1, plan.overhead_s))


def _one_hop_loaded(
    stack: Stack, plan: Plan, step: Callable[[str], None], rep: int, gateway: one_hop.Gateway, f: PlumbingFigures
) -> None:
    step(f"one-hop gateway c{plan.load_connections}, the reference ({rep + 1}/{plan.repetitions})")
    pids = {"gateway": gateway.pid, "cloud": stack.processes["local-cloud"].pid}
    before = {key: cpu_s(pid) for key, pid in pids.items()}
    result = one_hop.load(gateway, stack, PROMPT, plan.overhead_tokens, plan.load_connections, plan.load_s)
    f.one_hop_cpu_ms.append({key: 1000 * (cpu_s(pid) - before[key]) / max(result.ok, 1) for key, pid in pids.items()})
    f.one_hop_loaded.append(result)


def _tier_timing(stack: Stack, plan: Plan, step: Callable[[str], None], rep: int, figures: PlumbingFigures) -> None:
    step(f"REST c1, each answer's Server-Timing ({rep + 1}/{plan.repetitions})")
    body = query_body(PROMPT, plan.overhead_tokens)
    run = tier_timing.timed_requests(stack.ports.rest, stack.auth_headers, body, plan.overhead_s)
    figures.server_timing.append(run)


def _without_edge(
    stack: Stack, plan: Plan, step: Callable[[str], None], rep: int, port: int, figures: PlumbingFigures
) -> None:
    step(f"overhead rest without issue 18's edge c1 ({rep + 1}/{plan.repetitions})")
    figures.without_edge.append(load(stack, "rest", PROMPT, plan.overhead_tokens, 1, plan.overhead_s, rest_port=port))


def measure_plumbing(stack: Stack, plan: Plan, step: Callable[[str], None]) -> PlumbingFigures:
    """Interleave the entry points within each repetition, so that noise falls on all of them alike (the REST
    tier's one client also at the baseline REST tier without issue 18's edge and at the one-hop gateway, just
    before or after the shipped one in turn, and again under issue 18's attack); then the 64-connection runs, each
    between two one-client probes of the local Bedrock (latency before and after a burst), and the one-hop
    gateway's just before or after each in turn."""
    figures = PlumbingFigures()
    drain(stack)  # warms every tier: imports, connections, first-call paths
    with baseline_rest(stack) as baseline_port, one_hop.one_hop_gateway(stack) as gateway:
        for rep in range(plan.repetitions):
            for entry in ENTRY_POINTS:
                if entry == "rest" and rep % 2:  # the baseline and the reference first in every other repetition
                    _without_edge(stack, plan, step, rep, baseline_port, figures)
                    _one_hop_c1(stack, plan, step, rep, gateway, figures)
                step(f"overhead {entry} c1 ({rep + 1}/{plan.repetitions})")
                figures.runs[entry].append(load(stack, entry, PROMPT, plan.overhead_tokens, 1, plan.overhead_s))
                if entry == "rest":
                    _tier_timing(stack, plan, step, rep, figures)
                if entry == "rest" and not rep % 2:
                    _without_edge(stack, plan, step, rep, baseline_port, figures)
                    _one_hop_c1(stack, plan, step, rep, gateway, figures)
            step(f"REST c1 alternating shipped and without issue 18's edge ({rep + 1}/{plan.repetitions})")
            body = query_body(PROMPT, plan.overhead_tokens)
            figures.paired.append(paired(stack, (stack.ports.rest, baseline_port), body, plan.overhead_s))
            step(f"REST c1 under attack ({rep + 1}/{plan.repetitions})")
            attack = Attack(stack.ports.rest)
            attack.start()
            try:
                figures.attacked.append(load(stack, "rest", PROMPT, plan.overhead_tokens, 1, plan.overhead_s))
            finally:
                attack.stop()
        for rep in range(plan.repetitions):
            if rep % 2:
                _one_hop_loaded(stack, plan, step, rep, gateway, figures)
            step(f"REST c{plan.load_connections} ({rep + 1}/{plan.repetitions})")
            pids = {key: stack.processes[tier].pid for key, tier in TIERS.items()}
            quiet = probe_bedrock(stack, PROMPT, plan.overhead_tokens, plan.burst_probe_s)
            before = {key: cpu_s(pid) for key, pid in pids.items()}
            result = load(stack, "rest", PROMPT, plan.overhead_tokens, plan.load_connections, plan.load_s)
            used = {key: cpu_s(pid) - before[key] for key, pid in pids.items()}
            after = probe_bedrock(stack, PROMPT, plan.overhead_tokens, plan.burst_probe_s)
            figures.bursts.append(BurstProbe(quiet, after))
            figures.loaded.append(result)
            figures.cpu_ms_per_request.append({key: 1000 * s / max(result.ok, 1) for key, s in used.items()})
            if not rep % 2:
                _one_hop_loaded(stack, plan, step, rep, gateway, figures)
    for rep in range(plan.repetitions):
        step(f"bare grpc.aio client and server, the floor under REST and the proxy ({rep + 1}/{plan.repetitions})")
        figures.grpc_floor.append(floor_cpu_ms(FloorRun(plan.floor_calls, plan.floor_streams, plan.generation_tokens)))
    step(f"{plan.abandoned_streams} abandoned streams")
    figures.abandoned_growth_mb = rss_trend_mb(
        stack, plan.abandoned_streams, plan.abandon_warm_up, 1, plan.abandoned_streams
    )
    figures.abandoned_streams = plan.abandoned_streams
    return figures
