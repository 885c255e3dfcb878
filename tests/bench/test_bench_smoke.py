"""The bench in its tiny configuration still runs end to end and writes every key and file (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdallm.bench import run
from lambdallm.bench.plan import QUICK

pytestmark = [pytest.mark.e2e, pytest.mark.model]

KEYS = (
    "direct_tokens_per_s",
    "e2e_tokens_per_s",
    "e2e_vs_direct",
    "overhead_ms",
    "rest_rps_c64",
    "cpu_ms_per_request",
    "after_burst_ms",
    "rest_under_attack_ms",
    "rest_hop_ms",
    "rss_growth_mb_per_10k_abandoned_streams",
    "stream_cpu_ms_per_token",
    "whole_cpu_ms_per_token",
    "decode_step_ms",
    "rest_errors_c64",
    "aggregate_vs_single_c8",
    "rss_mb",
    "llama_server",
    "e2e_vs_llama_server",
    "aggregate_c8_vs_llama_server",
    "ttft_ms_c8",
    "ttft_ms",
    "stream_tokens_per_s",
    "stream_vs_direct",
    "latency_ms_c8",
    "errors_c8",
    "openai_vs_query",
    "plumbing",
    "tracing_cost",
    "scale_out",
)


def test_quick_bench_writes_every_key_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(quick=True, out_dir=tmp_path) == 0

    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(KEYS) <= set(results)
    flat = ("direct_tokens_per_s", "e2e_tokens_per_s", "e2e_vs_direct", "rest_rps_c64", "aggregate_vs_single_c8")
    flat += ("errors_c8",)
    spreads = [results[key] for key in (*flat, "e2e_vs_llama_server", "aggregate_c8_vs_llama_server")]
    spreads += [results["stream_vs_direct"], *results["stream_tokens_per_s"].values()]
    spreads += [results["ttft_ms"]["chain_minus_direct_p50"], *results["ttft_ms_c8"].values()]
    spreads += [results["llama_server"]["tokens_per_s"], results["llama_server"]["aggregate_c8"]]
    spreads += [results["cpu_ms_per_request"][tier] for tier in ("rest", "proxy", "cloud", "chain")]
    assert results["cpu_ms_per_request"]["chain"]["median"] > 0
    floor = results["plumbing"]["grpc_floor_cpu_ms"]
    assert floor["per_request"]["client"]["median"] > 0 and floor["per_streamed_token"]["client"]["median"] > 0
    reference = results["plumbing"]["one_hop_gateway"]
    assert reference["errors"]["max"] == 0  # the one-hop gateway answered every request over the same Bedrock
    assert reference["cpu_ms_per_request"]["gateway"]["median"] > 0
    spreads += [reference["p50_ms_c1"], reference["rps_c64"], *reference["chain_over_one_hop"].values()]
    tiers = results["plumbing"]["tier_p50_ms_c1"]
    assert set(tiers) == {"total", "rest", "proxy", "backend", "model"} and tiers["total"]["median"] > 0
    spreads += tiers.values()
    assert set(results["after_burst_ms"]) == {"quiet_p99", "first", "settled_p99", "settled_p99_over_quiet"}
    spreads += results["after_burst_ms"].values()
    assert set(results["rest_under_attack_ms"]) == {"p50", "p99", "p99_minus_quiet_p99", "errors"}
    spreads += results["rest_under_attack_ms"].values()
    hop = results["rest_hop_ms"]
    pairs = ("shipped", "without_edge", "shipped_minus_without_edge")
    assert set(hop) == {*pairs, "shipped_over_without_edge_p50"}
    assert all(set(hop[key]) == {"p50", "p99"} for key in pairs)
    spreads += [*(s for key in pairs for s in hop[key].values()), hop["shipped_over_without_edge_p50"]]
    assert results["rest_under_attack_ms"]["errors"]["max"] == 0  # every key holder's request was answered
    v1 = results["openai_vs_query"]
    assert set(v1) == {"query", "v1", "v1_over_query"}
    assert all(v1[route]["errors_many"]["max"] == 0 for route in ("query", "v1"))  # /v1 answered like /query
    spreads += [v1[route][key] for route in ("query", "v1") for key in ("p50_ms", "p99_ms", "rps_many")]
    cost = results["tracing_cost"]
    assert cost["errors_many"] == 0  # the traced chain answered like the other
    spreads += [cost[f"{mode}_{key}"] for mode in ("off", "on") for key in ("rps_many", "p50_ms")]
    spreads += [cost["on_over_off_rps_many"], cost["on_over_off_p50"]]
    scale = results["scale_out"]
    if "skipped" not in scale:  # HAProxy could not be installed: the section says so instead
        assert scale["errors_many"] == 0  # HAProxy answered every request through one replica and through two
        assert scale["two_replicas_second_share"]["min"] > 0  # the second replica served
        spreads += [scale[f"{mode}_rps_many"] for mode in ("direct", "one_replica", "two_replicas")]
        spreads += [scale["two_over_one_rps_many"], scale["one_over_direct_rps_many"]]
    assert set(results["rss_growth_mb_per_10k_abandoned_streams"]) == {"rest", "proxy", "cloud"}
    assert set(results["stream_cpu_ms_per_token"]) == set(results["whole_cpu_ms_per_token"]) == {"rest", "proxy"}
    spreads += [*results["stream_cpu_ms_per_token"].values(), *results["whole_cpu_ms_per_token"].values()]
    assert set(results["decode_step_ms"]) == {"whole", "streamed", "streamed_over_whole"}
    spreads += results["decode_step_ms"].values()
    assert results["decode_step_ms"]["whole"]["median"] > 0  # the real model's steps were counted
    ttfts = [results["ttft_ms"]["chain"], results["ttft_ms"]["direct"], results["latency_ms_c8"]]
    ttfts += [results["llama_server"]["ttft_ms"], results["llama_server"]["ttft_ms_c8"]]
    for ttft in ttfts:
        assert set(ttft) == {"p50", "p99"}
        spreads += ttft.values()
    for spread in spreads:
        assert set(spread) >= {"median", "min", "max"}
        assert spread["n"] == QUICK.repetitions
    assert set(results["llama_server"]) == {"tokens_per_s", "aggregate_c8", "ttft_ms", "ttft_ms_c8"}
    assert set(results["ttft_ms_c8"]) == {"p50", "p99", "p99_over_p50"}
    assert results["llama_server"]["aggregate_c8"]["median"] > 0  # the reference really generated
    # Every path streamed real tokens: a first token came, and the streamed pace is a number of tokens a second.
    assert all(ttft["p50"]["median"] > 0 for ttft in ttfts)
    assert results["stream_tokens_per_s"]["chain"]["median"] > 0
    assert results["stream_tokens_per_s"]["direct"]["median"] > 0
    assert len(results["meta"]["machine"]["load_average"]["start"]) == 3
    assert set(results["overhead_ms"]) == {"bedrock", "apigw", "grpc", "rest"}
    assert all(set(spreads) == {"p50", "p99"} for spreads in results["overhead_ms"].values())
    assert set(results["rss_mb"]) == {"rest", "proxy", "cloud"}
    assert results["e2e_output_tokens_per_request"]["median"] > 0  # the chain really generated

    table = (tmp_path / "latest.md").read_text()
    assert "| figure" in table
    assert table in capsys.readouterr().out
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")
