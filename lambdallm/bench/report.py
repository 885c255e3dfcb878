"""The bench's results as one JSON document, a short markdown table, and (plot.py) a PNG beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lambdallm.bench import one_hop, tier_timing
from lambdallm.bench.generation import GenerationFigures
from lambdallm.bench.openai_api import OpenAIFigures
from lambdallm.bench.plumbing import PlumbingFigures
from lambdallm.bench.scale_out import ScaleOutFigures, markdown_row
from lambdallm.bench.stats import Spread
from lambdallm.bench.streaming import StreamBatch
from lambdallm.bench.tracing_cost import TracingFigures


def build(
    plumbing: PlumbingFigures,
    generation: GenerationFigures,
    rss_mb: dict[str, float],
    rss_mb_instant: dict[str, float],
    meta: dict[str, Any],
    openai: OpenAIFigures | None = None,
    tracing: TracingFigures | None = None,
    scale_out: ScaleOutFigures | None = None,
) -> dict[str, Any]:
    """The keys of latest.json; every repeated figure as {median, min, max, n}."""
    sections = {"openai_vs_query": openai, "tracing_cost": tracing, "scale_out": scale_out}
    extra = {key: section.as_dict() for key, section in sections.items() if section is not None}
    return extra | {
        "direct_tokens_per_s": generation.direct_tokens_per_s().as_dict(),
        "e2e_tokens_per_s": generation.e2e_tokens_per_s().as_dict(),
        "e2e_vs_direct": generation.e2e_vs_direct().as_dict(),
        "ttft_ms": {
            "chain": _ttft(generation.ttft_chain),
            "direct": _ttft(generation.ttft_direct),
            "chain_minus_direct_p50": generation.ttft_chain_minus_direct().as_dict(1),
        },
        "stream_tokens_per_s": {
            "chain": Spread.of([b.tokens_per_s for b in generation.streamed]).as_dict(),
            "direct": Spread.of([g.as_stream().tokens_per_s for g in generation.direct]).as_dict(),
        },
        "stream_vs_direct": generation.stream_vs_direct().as_dict(),
        "stream_cpu_ms_per_token": {tier: spread.as_dict(3) for tier, spread in generation.stream_cpu_ms().items()},
        "whole_cpu_ms_per_token": {tier: spread.as_dict(3) for tier, spread in generation.whole_cpu_ms().items()},
        "decode_step_ms": {key: spread.as_dict(3) for key, spread in generation.decode_step_ms().items()},
        "overhead_ms": {
            entry: {k: s.as_dict() for k, s in spreads.items()} for entry, spreads in plumbing.overhead_ms().items()
        },
        "rest_hop_ms": _rest_hop(plumbing),
        "plumbing": plumbing_figures(plumbing, generation),
        "rest_rps_c64": Spread.of([r.rps for r in plumbing.loaded]).as_dict(1),
        "rest_errors_c64": Spread.of([r.errors for r in plumbing.loaded]).as_dict(),
        "cpu_ms_per_request": {tier: spread.as_dict(3) for tier, spread in plumbing.cpu_ms().items()},
        "after_burst_ms": {key: spread.as_dict(3) for key, spread in plumbing.after_burst_ms().items()},
        "rest_under_attack_ms": {key: spread.as_dict(3) for key, spread in plumbing.under_attack_ms().items()},
        "rss_growth_mb_per_10k_abandoned_streams": plumbing.growth_mb_per_10k_abandoned(),
        "aggregate_vs_single_c8": generation.aggregate_vs_single().as_dict(),
        "single_client_tokens_per_s": Spread.of([r.tokens_per_s for r in generation.single]).as_dict(),
        "aggregate_tokens_per_s_c8": Spread.of([r.tokens_per_s for r in generation.many]).as_dict(),
        "errors_c8": Spread.of([r.errors for r in generation.many]).as_dict(),  # a failed answer adds no tokens
        "e2e_output_tokens_per_request": Spread.of([r.tokens / r.ok for r in generation.single if r.ok]).as_dict(1),
        "llama_server": {
            "tokens_per_s": Spread.of([r.tokens_per_s_per_request for r in generation.server_single]).as_dict(),
            "aggregate_c8": Spread.of([r.tokens_per_s for r in generation.server_many]).as_dict(),
            "ttft_ms": _ttft(generation.ttft_server),
            "ttft_ms_c8": _ttft(generation.server_streamed_many),
        },
        "e2e_vs_llama_server": generation.e2e_vs_llama_server().as_dict(),
        "aggregate_c8_vs_llama_server": generation.aggregate_vs_llama_server().as_dict(),
        "structured_c8": {  # the structured-output model, 8 clients: all plain, and half with a JSON Schema
            "plain_tokens_per_s": Spread.of([b.tokens_per_s for b in generation.structured_plain]).as_dict(),
            "half_json_schema_tokens_per_s": Spread.of([b.tokens_per_s for b in generation.structured_mixed]).as_dict(),
            "half_json_schema_over_plain": generation.structured_vs_plain().as_dict(),
            "errors": sum(b.errors for b in generation.structured_plain + generation.structured_mixed),
        },
        "ttft_ms_c8": _ttft(generation.streamed_many) | {"p99_over_p50": generation.ttft_c8_p99_over_p50().as_dict()},
        "latency_ms_c8": {  # the whole answers of the wrk batch
            "p50": Spread.of([r.p50_ms for r in generation.many]).as_dict(1),
            "p99": Spread.of([r.p99_ms for r in generation.many]).as_dict(1),
        },
        "rss_mb": {k: round(v, 1) for k, v in rss_mb.items()},
        "rss_mb_instant": {k: round(v, 1) for k, v in rss_mb_instant.items()},
        "latency_percentiles_ms": plumbing.percentiles_ms(),
        "meta": meta,
    }


def _rest_hop(plumbing: PlumbingFigures) -> dict[str, Any]:
    """The REST hop with and without issue 18's edge, p50 and p99 each, the ratio of their p50s, and the
    difference of the two REST entries."""
    hop = plumbing.rest_hop_ms()
    return {
        "shipped": {k: s.as_dict() for k, s in hop["shipped"].items()},
        "without_edge": {k: s.as_dict() for k, s in hop["without_edge"].items()},
        "shipped_over_without_edge_p50": hop["shipped_over_without_edge_p50"].as_dict(),
        "shipped_minus_without_edge": {k: s.as_dict() for k, s in hop["shipped_minus_without_edge"].items()},
    }


# One client's p50 per hop: entering at a tier minus entering at the next one (the Bedrock entry is the last hop).
HOPS = {"rest": ("rest", "grpc"), "proxy": ("grpc", "apigw"), "backend": ("apigw", "bedrock"), "bedrock": ("bedrock",)}


def plumbing_figures(plumbing: PlumbingFigures, generation: GenerationFigures) -> dict[str, Any]:
    """Issue 28's figures, each within its repetition: the chain's one-client p50 and 64-connection requests/s,
    each hop's one-client p50, REST + proxy CPU per request and per streamed token, the one-hop reference."""
    runs = plumbing.runs

    def hop(*entries: str) -> Spread:
        if len(entries) == 1:
            return Spread.of([r.p50_ms for r in runs[entries[0]]])
        return Spread.of([a.p50_ms - b.p50_ms for a, b in zip(runs[entries[0]], runs[entries[1]], strict=True)])

    per_request = [run["rest"] + run["proxy"] for run in plumbing.cpu_ms_per_request]
    per_token = [run["rest"] + run["proxy"] for run in generation.stream_cpu_ms_per_token]
    floor = plumbing.grpc_floor
    floors = {"per_request": "per_request", "per_streamed_token": "per_message"}
    measured = {"per_request": per_request, "per_streamed_token": per_token}
    return {
        "chain_p50_ms_c1": Spread.of([r.p50_ms for r in runs["rest"]]).as_dict(),
        "chain_rps_c64": Spread.of([r.rps for r in plumbing.loaded]).as_dict(1),
        "hop_p50_ms_c1": {name: hop(*entries).as_dict() for name, entries in HOPS.items()},
        "tier_p50_ms_c1": tier_timing.tier_p50_ms(plumbing.server_timing),
        "one_hop_gateway": plumbing.one_hop(),
        "rest_plus_proxy_cpu_ms": {
            "per_request": Spread.of(per_request).as_dict(),
            "per_streamed_token": Spread.of(per_token).as_dict(),
        },
        "grpc_floor_cpu_ms": {
            key: {side: Spread.of([run[of][side] for run in floor]).as_dict(3) for side in ("client", "server", "both")}
            for key, of in floors.items()
        },
        # Within each repetition: the REST tier plus the proxy over the bare client plus server.
        "rest_plus_proxy_over_grpc_floor": {
            key: Spread.of([mine / run[of]["both"] for mine, run in zip(measured[key], floor, strict=True)]).as_dict()
            for key, of in floors.items()
        },
    }


def _ttft(batches: list[StreamBatch]) -> dict[str, dict[str, float]]:
    """p50 and p99 time to first token of each repetition's streams, each summarised over the repetitions."""
    return {
        "p50": Spread.of([b.ttft_p50_ms for b in batches]).as_dict(1),
        "p99": Spread.of([b.ttft_p99_ms for b in batches]).as_dict(1),
    }


def markdown(results: dict[str, Any]) -> str:
    """A short table of the headline figures: median (min-max)."""

    def cell(spread: dict[str, float], unit: str = "") -> str:
        return f"{spread['median']:g}{unit} ({spread['min']:g}-{spread['max']:g})"

    def pair(spreads: dict[str, dict[str, float]], unit: str) -> str:
        return f"{cell(spreads['p50'])} / {cell(spreads['p99'])}{unit}"

    def tiers(spreads: dict[str, dict[str, float]]) -> str:
        return " / ".join(cell(spreads[tier]) for tier in ("rest", "proxy"))

    reps = results["meta"]["repetitions"]
    model = results["meta"].get("model", {}).get("name", "the real model")
    steps = results["decode_step_ms"]
    rows = [
        (f"direct model ({model}), tokens/s (reference)", cell(results["direct_tokens_per_s"])),
        ("whole chain, tokens/s (one client)", cell(results["e2e_tokens_per_s"])),
        ("whole chain / direct", cell(results["e2e_vs_direct"])),
        ("llama-server, tokens/s (one client, reference)", cell(results["llama_server"]["tokens_per_s"])),
        ("whole chain / llama-server (one client)", cell(results["e2e_vs_llama_server"])),
        ("8 clients / 1 client, total tokens/s", cell(results["aggregate_vs_single_c8"])),
        ("8 clients, total tokens/s: chain", cell(results["aggregate_tokens_per_s_c8"])),
        ("8 clients, total tokens/s: llama-server (reference)", cell(results["llama_server"]["aggregate_c8"])),
        ("8 clients, total tokens/s: chain / llama-server", cell(results["aggregate_c8_vs_llama_server"])),
        ("8 clients, chain: failed requests", cell(results["errors_c8"])),
        ("time to first token, direct model: p50 / p99 (reference)", pair(results["ttft_ms"]["direct"], " ms")),
        ("time to first token, whole chain streaming: p50 / p99", pair(results["ttft_ms"]["chain"], " ms")),
        ("time to first token, chain - direct (p50)", cell(results["ttft_ms"]["chain_minus_direct_p50"], " ms")),
        ("time to first token, llama-server: p50 / p99 (reference)", pair(results["llama_server"]["ttft_ms"], " ms")),
        ("streamed tokens/s: chain / direct (first to last token)", cell(results["stream_vs_direct"])),
        ("streaming one client: CPU ms per token, rest / proxy", tiers(results["stream_cpu_ms_per_token"])),
        ("whole answers one client: CPU ms per token, rest / proxy", tiers(results["whole_cpu_ms_per_token"])),
        (
            "model ms per generated-token step, one client: whole answers / streamed; streamed / whole",
            f"{cell(steps['whole'], ' ms')} / {cell(steps['streamed'], ' ms')}; {cell(steps['streamed_over_whole'])}",
        ),
        ("8 clients, time to first token, chain: p50 / p99", pair(results["ttft_ms_c8"], " ms")),
        ("8 clients, time to first token, chain: p99 / p50", cell(results["ttft_ms_c8"]["p99_over_p50"])),
        ("8 clients, time to first token, llama-server: p50 / p99", pair(results["llama_server"]["ttft_ms_c8"], " ms")),
        ("8 clients, whole answer latency, chain: p50 / p99", pair(results["latency_ms_c8"], " ms")),
    ]
    for entry, name in (("bedrock", "Bedrock"), ("apigw", "API Gateway"), ("grpc", "gRPC proxy"), ("rest", "REST")):
        spreads = results["overhead_ms"][entry]
        rows.append(
            (f"enter at {name}, instant model: p50 / p99", f"{cell(spreads['p50'])} / {cell(spreads['p99'])} ms")
        )
    hop = results["rest_hop_ms"]
    rows += [
        ("REST hop (enter at REST - at gRPC), shipped: p50 / p99", pair(hop["shipped"], " ms")),
        ("REST hop, without issue 18's edge (admission, timeouts): p50 / p99", pair(hop["without_edge"], " ms")),
        ("REST hop, shipped / without issue 18's edge (p50)", cell(hop["shipped_over_without_edge_p50"])),
        (
            "REST, one client alternating: shipped - without issue 18's edge, p50 / p99",
            pair(hop["shipped_minus_without_edge"], " ms"),
        ),
    ]
    if "openai_vs_query" in results:
        v1 = results["openai_vs_query"]
        rows += [
            (
                f"{route}, instant model, one client: p50 / p99; many connections: requests/s",
                f"{cell(v1[key]['p50_ms'])} / {cell(v1[key]['p99_ms'])} ms; {cell(v1[key]['rps_many'])}",
            )
            for key, route in (("query", "/query (a conversation)"), ("v1", "/v1/chat/completions (the same)"))
        ]
        ratio = v1["v1_over_query"]
        rows.append(
            ("/v1 / /query: p50; p99; requests/s", "; ".join(cell(ratio[k]) for k in ("p50", "p99", "rps_many")))
        )
    if "plumbing" in results:
        figures = results["plumbing"]
        hops = figures["hop_p50_ms_c1"]
        cpu = figures["rest_plus_proxy_cpu_ms"]
        floor, over = figures["grpc_floor_cpu_ms"], figures["rest_plus_proxy_over_grpc_floor"]
        rows += [
            (
                "one client p50 per hop, instant model: REST / proxy / API Gateway + Lambda / Bedrock",
                " / ".join(cell(hops[name]) for name in HOPS) + " ms",
            ),
            tier_timing.markdown_row(figures["tier_p50_ms_c1"], cell),
            (
                "REST + proxy CPU ms: per request (64 connections) / per streamed token (one client)",
                f"{cell(cpu['per_request'])} / {cell(cpu['per_streamed_token'])}",
            ),
            (
                "bare grpc.aio client + server CPU ms (the floor under REST + proxy): per call (64 at once) / per "
                "streamed message (8 ms apart); REST + proxy over it",
                f"{cell(floor['per_request']['both'])} / {cell(floor['per_streamed_token']['both'])}; "
                f"{cell(over['per_request'])} / {cell(over['per_streamed_token'])}",
            ),
            one_hop.markdown_row(figures["one_hop_gateway"], cell),
        ]
    if "tracing_cost" in results:
        cost = results["tracing_cost"]
        rows.append(
            (
                "REST, instant model, tracing off / on (ratio 1.0): requests/s; on over off",
                f"{cell(cost['off_rps_many'])} / {cell(cost['on_rps_many'])}; {cell(cost['on_over_off_rps_many'])}",
            )
        )
    if "scale_out" in results:
        rows.append(markdown_row(results["scale_out"], cell))
    attacked = results["rest_under_attack_ms"]
    abandoned = results["rss_growth_mb_per_10k_abandoned_streams"]
    rows += [
        (
            "REST, one key holder while 200 unauthenticated connections attack: p50 / p99; p99 - p99 without",
            f"{cell(attacked['p50'])} / {cell(attacked['p99'])} ms; {cell(attacked['p99_minus_quiet_p99'], ' ms')}",
        ),
        (
            "RSS growth per 10,000 abandoned streams, after a warm-up: rest / proxy / cloud",
            " / ".join(f"{abandoned[tier]:.2f}" for tier in ("rest", "proxy", "cloud")) + " MB",
        ),
        ("REST, 64 connections: requests/s", cell(results["rest_rps_c64"])),
        ("REST, 64 connections: failed requests", cell(results["rest_errors_c64"])),
        (
            "REST, 64 connections: CPU ms per request, rest / proxy / cloud = chain",
            " / ".join(cell(results["cpu_ms_per_request"][t]) for t in ("rest", "proxy", "cloud"))
            + f" = {cell(results['cpu_ms_per_request']['chain'])}",
        ),
        (
            "Bedrock, one client, after a 64-connection burst: first request; p99 from 0.1 s on / p99 before",
            f"{cell(results['after_burst_ms']['first'], ' ms')}; "
            f"{cell(results['after_burst_ms']['settled_p99_over_quiet'])}",
        ),
        ("RSS after the run, MB: rest / proxy / cloud", " / ".join(f"{v:g}" for v in results["rss_mb"].values())),
    ]
    if load := results["meta"].get("machine", {}).get("load_average"):
        averages = "; ".join(" / ".join(f"{x:g}" for x in load[when]) for when in ("start", "end"))
        rows.append(("machine load average, 1 / 5 / 15 min: start; end", averages))
    lines = [f"| figure (median of {reps}, min-max) | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write latest.json, latest.md and latest.png into `out_dir`; the paths written."""
    from lambdallm.bench.plot import plot

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "latest.json", out_dir / "latest.md", out_dir / "latest.png"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths
