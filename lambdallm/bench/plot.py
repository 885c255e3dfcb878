"""The PNG of a bench run: latency percentiles per entry point, token throughput, and REST requests/s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {"bedrock": "Bedrock", "apigw": "API Gateway", "grpc": "gRPC proxy", "rest": "REST"}


def plot(results: dict[str, Any], path: Path) -> None:
    """Four panels, error bars from min to max of the repetitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, tokens, ttft, requests) = plt.subplots(1, 4, figsize=(23, 4.8), width_ratios=(2, 2.4, 1.8, 0.6))
    for entry, points in results["latency_percentiles_ms"].items():
        latency.plot(range(len(points)), list(points.values()), marker="o", label=LABELS[entry])
        latency.set_xticks(range(len(points)), [f"p{p}" for p in points])
    latency.set(xlabel="percentile", ylabel="latency (ms)", yscale="log", title="Entering at each tier (instant model)")
    latency.grid(True, which="both", alpha=0.3)
    latency.legend()

    bars = {
        "direct": results["direct_tokens_per_s"],
        "chain\n1 client": results["e2e_tokens_per_s"],
        "chain total\n1 client": results["single_client_tokens_per_s"],
        "direct\nstreamed": results["stream_tokens_per_s"]["direct"],
        "chain\nstreamed": results["stream_tokens_per_s"]["chain"],
        "llama-server\n1 client": results["llama_server"]["tokens_per_s"],
        "chain total\n8 clients": results["aggregate_tokens_per_s_c8"],
        "llama-server\ntotal 8 clients": results["llama_server"]["aggregate_c8"],
    }
    model = results["meta"].get("model", {}).get("name", "real model")
    _bars(tokens, bars, "tokens/s", f"{model} generation")
    _ttft_bars(ttft, results)
    _bars(requests, {"REST\n64 conns": results["rest_rps_c64"]}, "requests/s", "REST, instant model")
    figure.suptitle(f"λλM bench {results['meta']['date']} (median of {results['meta']['repetitions']}, min-max)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _ttft_bars(axes: Any, results: dict[str, Any]) -> None:
    """Time to first token, p50 beside p99, one client then 8, log scale (from tens to thousands of ms)."""
    server = results["llama_server"]
    groups = {
        "direct\n1 client": results["ttft_ms"]["direct"],
        "chain\n1 client": results["ttft_ms"]["chain"],
        "llama-server\n1 client": server["ttft_ms"],
        "chain\n8 clients": results["ttft_ms_c8"],
        "llama-server\n8 clients": server["ttft_ms_c8"],
    }
    width = 0.4
    for offset, pct, colour in ((-width / 2, "p50", "#4c72b0"), (width / 2, "p99", "#dd8452")):
        spreads = [g[pct] for g in groups.values()]
        xs = [i + offset for i in range(len(groups))]
        medians = [s["median"] for s in spreads]
        errors = [[s["median"] - s["min"] for s in spreads], [s["max"] - s["median"] for s in spreads]]
        bars = axes.bar(xs, medians, width, yerr=errors, capsize=3, color=colour, label=pct)
        axes.bar_label(bars, fmt="%.0f", label_type="center", color="white", fontsize=8)
    axes.set_xticks(range(len(groups)), list(groups))
    axes.set(ylabel="ms", yscale="log", title="Time to first token, streaming")
    axes.legend()


def _bars(axes: Any, spreads: dict[str, dict[str, float]], unit: str, title: str) -> None:
    medians = [s["median"] for s in spreads.values()]
    below = [s["median"] - s["min"] for s in spreads.values()]
    above = [s["max"] - s["median"] for s in spreads.values()]
    bars = axes.bar(list(spreads), medians, yerr=[below, above], capsize=4, color="#4c72b0")
    axes.bar_label(bars, fmt="%.3g", label_type="center", color="white", fontsize=9)  # clear of the error bars
    axes.set(ylabel=unit, title=title)
