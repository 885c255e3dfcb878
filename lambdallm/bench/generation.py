"""Figures of the real model: in-process reference against the whole chain, and eight clients against one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lambdallm.bench.entry import drain, load
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.model import PROMPT, DirectModel, Generation
from lambdallm.bench.plan import Plan
from lambdallm.bench.stats import Spread
from lambdallm.stack import Stack


@dataclass
class GenerationFigures:
    """Per repetition: one direct generation, a batch from one client, a batch from `plan.clients` clients at once."""

    direct: list[Generation] = field(default_factory=list)
    single: list[LoadResult] = field(default_factory=list)
    many: list[LoadResult] = field(default_factory=list)

    def direct_tokens_per_s(self) -> Spread:
        return Spread.of([g.tokens_per_s for g in self.direct])

    def e2e_tokens_per_s(self) -> Spread:
        """Tokens per second of one request's own latency through the chain (what one client sees)."""
        return Spread.of([r.tokens_per_s_per_request for r in self.single])

    def e2e_vs_direct(self) -> Spread:
        """The ratio within each repetition, then its spread: each figure against its own reference."""
        return Spread.of(
            [r.tokens_per_s_per_request / g.tokens_per_s for r, g in zip(self.single, self.direct, strict=True)]
        )

    def aggregate_vs_single(self) -> Spread:
        """Total tokens/s of the many-client batch over the one-client batch's (each: tokens / its wall time)."""
        return Spread.of(
            [m.tokens_per_s / s.tokens_per_s for m, s in zip(self.many, self.single, strict=True) if s.tokens]
        )


def measure_generation(stack: Stack, plan: Plan, step: Callable[[str], None]) -> GenerationFigures:
    """Alternate the direct model and the chain in every repetition; batches leave nothing queued behind them."""
    figures = GenerationFigures()
    tokens, cap = plan.generation_tokens, plan.generation_cap_s
    model = DirectModel()
    try:
        model.generate(PROMPT, 8)  # first-call costs (allocation, caches) are not part of the reference
        drain(stack)
        for rep in range(plan.repetitions):
            of = f"({rep + 1}/{plan.repetitions})"
            step(f"direct model {tokens} tokens {of}")
            figures.direct.append(model.generate(PROMPT, tokens))
            step(f"chain, 1 client {of}")
            figures.single.append(load(stack, "rest", PROMPT, tokens, 1, cap, plan.single_requests))
            drain(stack)
            step(f"chain, {plan.clients} clients {of}")
            figures.many.append(load(stack, "rest", PROMPT, tokens, plan.clients, cap, 1))
            drain(stack)
    finally:
        model.close()
    return figures
