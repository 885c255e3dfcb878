"""Figures of the real model: the whole chain against the in-process model and against llama-server, 1 and 8 clients."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from lambdallm import settings
from lambdallm.bench.entry import drain, load
from lambdallm.bench.llama_server import load_llama_server, running_llama_server
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.model import PROMPT, DirectModel, Generation, model_path
from lambdallm.bench.plan import Plan
from lambdallm.bench.stats import Spread
from lambdallm.stack import Stack


@dataclass
class GenerationFigures:
    """Per repetition: one direct generation, then a batch from one client and one from `plan.clients` clients
    at once, each through the chain and through llama-server."""

    direct: list[Generation] = field(default_factory=list)
    single: list[LoadResult] = field(default_factory=list)
    many: list[LoadResult] = field(default_factory=list)
    server_single: list[LoadResult] = field(default_factory=list)
    server_many: list[LoadResult] = field(default_factory=list)

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

    def e2e_vs_llama_server(self) -> Spread:
        """One client's tokens/s through the chain over llama-server's, within each repetition."""
        pairs = zip(self.single, self.server_single, strict=True)
        return Spread.of([c.tokens_per_s_per_request / s.tokens_per_s_per_request for c, s in pairs])

    def aggregate_vs_llama_server(self) -> Spread:
        """Total tokens/s of the many-client batch through the chain over llama-server's, within each repetition."""
        return Spread.of([c.tokens_per_s / s.tokens_per_s for c, s in zip(self.many, self.server_many, strict=True)])


def measure_generation(stack: Stack, plan: Plan, log: IO[str], step: Callable[[str], None]) -> GenerationFigures:
    """Alternate the direct model, the chain and llama-server in every repetition; batches leave nothing queued."""
    figures = GenerationFigures()
    tokens, cap = plan.generation_tokens, plan.generation_cap_s
    cloud = settings.load(settings.CloudSettings, "local-cloud")
    step("starting llama-server (built on first use)")
    with contextlib.ExitStack() as resources:
        url = resources.enter_context(
            running_llama_server(model_path(), cloud.threads, cloud.context_tokens, cloud.slots, log)
        )
        model = DirectModel()
        resources.callback(model.close)
        model.generate(PROMPT, 8)  # first-call costs (allocation, caches) are not part of the reference
        load_llama_server(url, PROMPT, 8, 1, cap, 1)
        drain(stack)
        for rep in range(plan.repetitions):
            of = f"({rep + 1}/{plan.repetitions})"
            step(f"direct model {tokens} tokens {of}")
            figures.direct.append(model.generate(PROMPT, tokens))
            step(f"chain, 1 client {of}")
            figures.single.append(load(stack, "rest", PROMPT, tokens, 1, cap, plan.single_requests))
            drain(stack)
            step(f"llama-server, 1 client {of}")
            figures.server_single.append(load_llama_server(url, PROMPT, tokens, 1, cap, plan.single_requests))
            step(f"chain, {plan.clients} clients {of}")
            figures.many.append(load(stack, "rest", PROMPT, tokens, plan.clients, cap, 1))
            drain(stack)
            step(f"llama-server, {plan.clients} clients {of}")
            figures.server_many.append(load_llama_server(url, PROMPT, tokens, plan.clients, cap, 1))
    return figures
