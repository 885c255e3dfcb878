"""The PNG of a bench run: latency percentiles per entry point, token throughput, and REST requests/s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {"bedrock": "Bedrock", "apigw": "API Gateway", "grpc": "gRPC proxy", "rest": "REST"}


def plot(results: dict[str, Any], path: Path) -> None:
    """Three panels, error bars from min to max of the repetitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, tokens, requests) = plt.subplots(1, 3, figsize=(17, 4.5), width_ratios=(2, 2, 0.8))
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
        "llama-server\n1 client": results["llama_server"]["tokens_per_s"],
        "chain total\n8 clients": results["aggregate_tokens_per_s_c8"],
        "llama-server\ntotal 8 clients": results["llama_server"]["aggregate_c8"],
    }
    model = results["meta"].get("model", {}).get("name", "real model")
    _bars(tokens, bars, "tokens/s", f"{model} generation")
    _bars(requests, {"REST\n64 conns": results["rest_rps_c64"]}, "requests/s", "REST, instant model")
    figure.suptitle(f"λλM bench {results['meta']['date']} (median of {results['meta']['repetitions']}, min-max)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(axes: Any, spreads: dict[str, dict[str, float]], unit: str, title: str) -> None:
    medians = [s["median"] for s in spreads.values()]
    below = [s["median"] - s["min"] for s in spreads.values()]
    above = [s["max"] - s["median"] for s in spreads.values()]
    bars = axes.bar(list(spreads), medians, yerr=[below, above], capsize=4, color="#4c72b0")
    axes.bar_label(bars, fmt="%.3g", label_type="center", color="white", fontsize=9)  # clear of the error bars
    axes.set(ylabel=unit, title=title)
