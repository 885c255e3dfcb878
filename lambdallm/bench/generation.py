"""Figures of the real model: the whole chain against the in-process model and against llama-server, 1 and 8 clients."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

from lambdallm import settings
from lambdallm.bench.entry import drain, load, query_body
from lambdallm.bench.llama_server import completion_body, load_llama_server, running_llama_server
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.memory import cpu_s
from lambdallm.bench.model import PROMPT, DirectModel, Generation, model_path
from lambdallm.bench.plan import Plan
from lambdallm.bench.stats import Spread
from lambdallm.bench.streaming import StreamBatch, StreamClient, read_chain_events, read_llama_server
from lambdallm.bench.structured import Batch, plain_and_mixed
from lambdallm.stack import Stack

STREAM_CPU_TIERS = ("rest", "proxy")  # the local cloud's own share is not told apart from its model's threads


@dataclass
class GenerationFigures:
    """Per repetition: one direct generation and the chain's streamed one; short streams timed to their first
    token (direct, chain, llama-server in turn); then a batch from one client and one from `plan.clients` clients
    at once, each through the chain and through llama-server, whole and then streamed."""

    direct: list[Generation] = field(default_factory=list)
    single: list[LoadResult] = field(default_factory=list)
    many: list[LoadResult] = field(default_factory=list)
    server_single: list[LoadResult] = field(default_factory=list)
    server_many: list[LoadResult] = field(default_factory=list)
    streamed: list[StreamBatch] = field(default_factory=list)  # the chain, one client, generation_tokens each
    ttft_direct: list[StreamBatch] = field(default_factory=list)  # short streams, one client
    ttft_chain: list[StreamBatch] = field(default_factory=list)
    ttft_server: list[StreamBatch] = field(default_factory=list)
    streamed_many: list[StreamBatch] = field(default_factory=list)  # `plan.clients` streams at once
    server_streamed_many: list[StreamBatch] = field(default_factory=list)
    # Per one-client streamed batch: CPU ms that the REST tier's and the proxy's processes spent per text event.
    stream_cpu_ms_per_token: list[dict[str, float]] = field(default_factory=list)
    # Per one-client whole-answer batch: the same per generated token (the proxy reads the backend's stream for a
    # whole answer too, its lines joined by X-Batch-Ms).
    whole_cpu_ms_per_token: list[dict[str, float]] = field(default_factory=list)
    # Per repetition: the model's mean ms per `generate` forward pass (the local cloud's metrics) during the
    # one-client whole-answer batch and during the one-client streamed one.
    step_ms_whole: list[float] = field(default_factory=list)
    step_ms_streamed: list[float] = field(default_factory=list)
    # Per repetition: `plan.clients` plain answers of the structured-output model, and half of them structured.
    structured_plain: list[Batch] = field(default_factory=list)
    structured_mixed: list[Batch] = field(default_factory=list)

    def structured_vs_plain(self) -> Spread:
        """Total tokens/s of the half-structured batch over the all-plain one, within each repetition."""
        pairs = zip(self.structured_mixed, self.structured_plain, strict=True)
        return Spread.of([m.tokens_per_s / p.tokens_per_s for m, p in pairs if p.tokens_per_s])

    def decode_step_ms(self) -> dict[str, Spread]:
        """The model's time per generated-token step, whole answers and streamed, and the ratio within each
        repetition: how much the tiers' per-token work slows the model down on the cores they share."""
        pairs = zip(self.step_ms_streamed, self.step_ms_whole, strict=True)
        return {
            "whole": Spread.of(self.step_ms_whole),
            "streamed": Spread.of(self.step_ms_streamed),
            "streamed_over_whole": Spread.of([streamed / whole for streamed, whole in pairs if whole]),
        }

    def stream_cpu_ms(self) -> dict[str, Spread]:
        return {tier: Spread.of([run[tier] for run in self.stream_cpu_ms_per_token]) for tier in STREAM_CPU_TIERS}

    def whole_cpu_ms(self) -> dict[str, Spread]:
        return {tier: Spread.of([run[tier] for run in self.whole_cpu_ms_per_token]) for tier in STREAM_CPU_TIERS}

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

    def stream_vs_direct(self) -> Spread:
        """The chain's streamed pace (first to last text event) over the direct model's (first to last token)."""
        pairs = zip(self.streamed, self.direct, strict=True)
        return Spread.of([s.tokens_per_s / d.as_stream().tokens_per_s for s, d in pairs])

    def ttft_chain_minus_direct(self) -> Spread:
        """How much later the chain's first token comes than the direct model's (p50s), within each repetition."""
        pairs = zip(self.ttft_chain, self.ttft_direct, strict=True)
        return Spread.of([c.ttft_p50_ms - d.ttft_p50_ms for c, d in pairs])

    def ttft_c8_p99_over_p50(self) -> Spread:
        """The many-client batch's p99 time to first token over its p50: near 1 when no request starves."""
        return Spread.of([b.ttft_p99_ms / b.ttft_p50_ms for b in self.streamed_many])

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
    chain_url, auth = f"{stack.rest_url}/query", stack.auth_headers
    step("starting llama-server (built on first use)")
    with contextlib.ExitStack() as resources:
        url = resources.enter_context(
            running_llama_server(model_path(), cloud.threads, cloud.context_tokens, cloud.slots, log)
        )
        model = DirectModel()
        resources.callback(model.close)
        server_prompt = model.rendered(PROMPT)  # what the local Bedrock feeds the model, given to llama-server too
        client = resources.enter_context(StreamClient(max_clients=2 * plan.clients))
        model.generate(PROMPT, 8)  # first-call costs (allocation, caches) are not part of the reference
        load_llama_server(url, server_prompt, 8, 1, cap, 1)
        client.one(url + "/completion", completion_body(server_prompt, 8, stream=True), read_llama_server)
        drain(stack)
        client.one(chain_url, query_body(PROMPT, 8), read_chain_events, auth)  # opens the keep-alive connection
        for rep in range(plan.repetitions):
            of = f"({rep + 1}/{plan.repetitions})"
            step(f"direct model {tokens} tokens, then streamed through the chain {of}")
            figures.direct.append(model.generate(PROMPT, tokens))
            before = {tier: cpu_s(stack.processes[tier].pid) for tier in STREAM_CPU_TIERS}
            steps = generate_steps(stack)
            streamed = client.batch(
                chain_url, query_body(PROMPT, tokens), read_chain_events, 1, plan.stream_requests, auth
            )
            figures.step_ms_streamed.append(ms_per_step(steps, generate_steps(stack)))
            events = max(sum(s.tokens for s in streamed.streams), 1)
            figures.stream_cpu_ms_per_token.append(
                {tier: 1000 * (cpu_s(stack.processes[tier].pid) - was) / events for tier, was in before.items()}
            )
            figures.streamed.append(streamed)
            step(f"time to first token: direct, chain, llama-server in turn {of}")
            _time_to_first_token(figures, model, client, chain_url, auth, url, server_prompt, plan)
            step(f"chain, 1 client {of}")
            steps = generate_steps(stack)
            before = {tier: cpu_s(stack.processes[tier].pid) for tier in STREAM_CPU_TIERS}
            single = load(stack, "rest", PROMPT, tokens, 1, cap, plan.single_requests)
            figures.whole_cpu_ms_per_token.append(
                {
                    tier: 1000 * (cpu_s(stack.processes[tier].pid) - was) / max(single.tokens, 1)
                    for tier, was in before.items()
                }
            )
            figures.single.append(single)
            drain(stack)
            figures.step_ms_whole.append(ms_per_step(steps, generate_steps(stack)))
            step(f"llama-server, 1 client {of}")
            figures.server_single.append(load_llama_server(url, server_prompt, tokens, 1, cap, plan.single_requests))
            step(f"chain, {plan.clients} clients {of}")
            figures.many.append(load(stack, "rest", PROMPT, tokens, plan.clients, cap, 1))
            drain(stack)
            step(f"llama-server, {plan.clients} clients {of}")
            figures.server_many.append(load_llama_server(url, server_prompt, tokens, plan.clients, cap, 1))
            step(f"chain, {plan.clients} clients streaming {of}")
            body = query_body(PROMPT, tokens)
            figures.streamed_many.append(client.batch(chain_url, body, read_chain_events, plan.clients, 1, auth))
            drain(stack)
            step(f"llama-server, {plan.clients} clients streaming {of}")
            body = completion_body(server_prompt, tokens, stream=True)
            figures.server_streamed_many.append(
                client.batch(url + "/completion", body, read_llama_server, plan.clients)
            )
            step(f"chain, {plan.clients} clients, plain and half with a JSON Schema, in turn {of}")
            plain, mixed = plain_and_mixed(chain_url, auth, cloud.gemma_model_id, plan.clients, tokens, rep % 2 == 1)
            figures.structured_plain.append(plain)
            figures.structured_mixed.append(mixed)
    return figures


def _time_to_first_token(
    figures: GenerationFigures,
    model: DirectModel,
    client: StreamClient,
    chain_url: str,
    auth: dict[str, str],
    server_url: str,
    server_prompt: str,
    plan: Plan,
) -> None:
    """Short streams from one client, the three paths one after the other sample by sample, so that a noisy
    moment falls on all three alike; each evaluates the whole prompt (no path reuses a cached one)."""
    n = plan.ttft_tokens
    direct, chain, server = [], [], []
    for _ in range(plan.ttft_samples):
        direct.append(model.generate(PROMPT, n, fresh=True).as_stream())
        chain.append(client.one(chain_url, query_body(PROMPT, n), read_chain_events, auth))
        server.append(
            client.one(server_url + "/completion", completion_body(server_prompt, n, stream=True), read_llama_server)
        )
    figures.ttft_direct.append(StreamBatch(direct))
    figures.ttft_chain.append(StreamBatch(chain))
    figures.ttft_server.append(StreamBatch(server))


def generate_steps(stack: Stack) -> tuple[float, float]:
    """The local cloud's `generate` forward passes so far and the seconds they took, over all its models."""
    with urllib.request.urlopen(stack.metrics_urls["local-cloud"], timeout=10) as answer:
        text = answer.read().decode()
    totals = {"lambdallm_bedrock_decode_steps_total": 0.0, "lambdallm_bedrock_decode_seconds_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals and sample.labels.get("kind") == "generate":
                totals[sample.name] += sample.value
    return totals["lambdallm_bedrock_decode_steps_total"], totals["lambdallm_bedrock_decode_seconds_total"]


def ms_per_step(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Mean ms per forward pass between two readings of `generate_steps` (0 if none ran)."""
    steps = after[0] - before[0]
    return 1000 * (after[1] - before[1]) / steps if steps else 0.0
