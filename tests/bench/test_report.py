"""The bench's pure pieces: spreads, percentiles, wrk's summary line and the streams' readers."""

from __future__ import annotations

import time

import pytest
from httpx_sse import ServerSentEvent

from lambdallm.bench.generation import GenerationFigures
from lambdallm.bench.loadgen import LoadError, LoadResult, parse
from lambdallm.bench.plumbing import PlumbingFigures
from lambdallm.bench.report import plumbing_figures
from lambdallm.bench.stats import Spread, percentile
from lambdallm.bench.streaming import Stream, StreamBatch, StreamError, read_chain_events, read_llama_server
from lambdallm.bench.tier_timing import PARTS

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:1/query
WRK_JSON {"requests":10,"duration_us":2000000,"ok":8,"non_2xx":2,"tokens":64,"socket_errors":1,"timeouts":0,\
"p50_us":1500,"p99_us":9000,"mean_us":2000.0,"max_us":9100,"error_kinds":{"503":2,"read":1},\
"percentiles_us":{"50":1500,"99":9000}}
"""


def test_spread_keeps_median_and_extremes() -> None:
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(median=2.0, min=1.0, max=3.0, n=3)
    with pytest.raises(ValueError):
        Spread.of([])


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([7.0], 99.9) == 7.0


def test_wrk_summary_counts_non_2xx_and_socket_errors_as_errors() -> None:
    result = parse(WRK_OUTPUT)
    assert (result.ok, result.errors, result.tokens) == (8, 3, 64)
    assert result.error_kinds == {"503": 2, "read": 1}
    assert result.p50_ms == 1.5
    assert result.rps == 4.0
    assert result.tokens_per_s_per_request == 4000.0  # 8 tokens a request in 2 ms each
    assert result.percentiles_ms == {"50": 1.5, "99": 9.0}


def test_wrk_without_summary_is_an_error() -> None:
    with pytest.raises(LoadError, match="without a summary"):
        parse("unable to connect to 127.0.0.1:1 Connection refused", returncode=1)


def sse(event: str, data: str) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data)


def test_chain_events_give_first_and_last_text_and_the_done_count() -> None:
    events = [sse("text", '{"text": "It"}'), sse("text", '{"text": " was"}')]
    events += [sse("done", '{"text": "It was", "output_tokens": 2}')]
    stream = read_chain_events(iter(events), time.perf_counter())
    assert stream.tokens == 2
    assert 0 < stream.first_s <= stream.last_s


def test_chain_error_event_and_missing_done_are_errors() -> None:
    error = [sse("text", '{"text": "It"}'), sse("error", '{"status": 502, "title": "Bad Gateway"}')]
    with pytest.raises(StreamError, match="error event"):
        read_chain_events(iter(error), time.perf_counter())
    with pytest.raises(StreamError, match="without a done event"):
        read_chain_events(iter(error[:1]), time.perf_counter())


def test_llama_server_stream_counts_tokens_predicted_of_the_final_object() -> None:
    events = [sse("message", '{"content": "It", "stop": false}'), sse("message", '{"content": " was", "stop": false}')]
    events += [sse("message", '{"content": "", "stop": true, "tokens_predicted": 2}')]
    stream = read_llama_server(iter(events), time.perf_counter())
    assert stream.tokens == 2
    assert stream.first_s > 0
    with pytest.raises(StreamError, match="without a final object"):
        read_llama_server(iter(events[:2]), time.perf_counter())


def test_streamed_pace_counts_the_steps_after_the_first_token() -> None:
    stream = Stream(first_s=0.1, last_s=1.1, tokens=11)
    assert stream.ttft_ms == 100.0
    assert stream.tokens_per_s == 10.0  # ten more tokens in the second after the first
    assert Stream(first_s=0.1, last_s=0.1, tokens=1).tokens_per_s == 0.0
    batch = StreamBatch([stream, Stream(first_s=0.3, last_s=2.3, tokens=11)])
    assert (batch.ttft_p50_ms, batch.ttft_p99_ms) == (100.0, 300.0)
    assert batch.tokens_per_s == 20 / 3


def test_rest_hop_is_rest_minus_grpc_within_each_repetition() -> None:
    def run(p50: float, p99: float) -> LoadResult:
        return LoadResult(requests=1, ok=1, errors=0, tokens=0, duration_s=1.0, p50_ms=p50, p99_ms=p99, mean_ms=p50)

    figures = PlumbingFigures()
    figures.runs["grpc"] = [run(2.0, 4.0), run(3.0, 5.0)]
    figures.runs["rest"] = [run(4.0, 7.0), run(4.5, 9.0)]
    figures.without_edge = [run(3.0, 6.0), run(6.0, 8.0)]
    figures.paired = [([2.0, 3.0, 9.0], [1.0, 2.0, 4.0]), ([1.0, 1.0, 2.0], [2.0, 2.0, 3.0])]  # p50 3 / 2, 1 / 2
    hop = figures.rest_hop_ms()
    assert hop["shipped"]["p50"] == Spread(median=1.75, min=1.5, max=2.0, n=2)
    assert hop["shipped"]["p99"] == Spread(median=3.5, min=3.0, max=4.0, n=2)
    assert hop["without_edge"]["p50"] == Spread(median=2.0, min=1.0, max=3.0, n=2)
    assert hop["shipped_over_without_edge_p50"] == Spread(median=1.25, min=0.5, max=2.0, n=2)
    # The edge's own cost comes from the paired samples, not from the two runs.
    assert hop["shipped_minus_without_edge"]["p50"] == Spread(median=0.0, min=-1.0, max=1.0, n=2)
    assert hop["shipped_minus_without_edge"]["p99"] == Spread(median=2.0, min=-1.0, max=5.0, n=2)


def test_plumbing_figures_are_hops_and_sums_within_each_repetition() -> None:
    def run(p50: float, ok: int = 1) -> LoadResult:
        return LoadResult(requests=ok, ok=ok, errors=0, tokens=0, duration_s=1.0, p50_ms=p50, p99_ms=p50, mean_ms=p50)

    plumbing = PlumbingFigures()
    for entry, p50s in {"rest": (5.0, 6.0), "grpc": (3.0, 3.5), "apigw": (2.0, 2.0), "bedrock": (0.5, 1.0)}.items():
        plumbing.runs[entry] = [run(p50) for p50 in p50s]
    plumbing.loaded = [run(100.0, ok=400), run(100.0, ok=300)]
    plumbing.cpu_ms_per_request = [{"rest": 1.0, "proxy": 0.5, "cloud": 2.0}, {"rest": 2.0, "proxy": 1.0, "cloud": 2.0}]
    generation = GenerationFigures()
    generation.stream_cpu_ms_per_token = [{"rest": 0.25, "proxy": 0.25}, {"rest": 0.5, "proxy": 0.25}]
    plumbing.grpc_floor = [
        {"per_request": floor(0.25, 0.5), "per_message": floor(0.1, 0.15)},
        {"per_request": floor(0.5, 1.0), "per_message": floor(0.5, 0.25)},
    ]
    plumbing.one_hop_c1 = [run(2.5), run(2.0)]
    plumbing.one_hop_loaded = [run(100.0, ok=800), run(100.0, ok=1000)]
    plumbing.one_hop_cpu_ms = [{"gateway": 0.5, "cloud": 1.0}, {"gateway": 1.0, "cloud": 1.5}]
    plumbing.server_timing = [{part: [1.0, 2.0, 6.0] for part in PARTS}, {part: [0.5, 0.5, 0.7] for part in PARTS}]

    figures = plumbing_figures(plumbing, generation)
    assert figures["chain_p50_ms_c1"] == Spread.of([5.0, 6.0]).as_dict()
    assert figures["chain_rps_c64"]["median"] == 350.0
    hops = figures["hop_p50_ms_c1"]
    assert (hops["rest"]["min"], hops["rest"]["max"]) == (2.0, 2.5)  # 5 - 3 and 6 - 3.5, not 6 - 3
    assert hops["proxy"] == Spread.of([1.0, 1.5]).as_dict()
    assert hops["backend"] == Spread.of([1.5, 1.0]).as_dict()
    assert hops["bedrock"] == Spread.of([0.5, 1.0]).as_dict()
    assert figures["tier_p50_ms_c1"]["proxy"] == Spread.of([2.0, 0.5]).as_dict()  # each run's p50, not all's
    cpu = figures["rest_plus_proxy_cpu_ms"]
    assert cpu["per_request"] == Spread.of([1.5, 3.0]).as_dict()
    assert cpu["per_streamed_token"] == Spread.of([0.5, 0.75]).as_dict()
    floors = figures["grpc_floor_cpu_ms"]
    assert floors["per_request"]["server"] == Spread.of([0.5, 1.0]).as_dict(3)
    assert floors["per_streamed_token"]["both"] == Spread.of([0.25, 0.75]).as_dict(3)
    over = figures["rest_plus_proxy_over_grpc_floor"]
    assert over["per_request"] == Spread.of([2.0, 2.0]).as_dict()  # 1.5 / 0.75 and 3.0 / 1.5
    assert over["per_streamed_token"] == Spread.of([2.0, 1.0]).as_dict()  # 0.5 / 0.25 and 0.75 / 0.75
    reference = figures["one_hop_gateway"]
    assert reference["p50_ms_c1"] == Spread.of([2.5, 2.0]).as_dict()
    assert reference["rps_c64"]["median"] == 900.0
    assert reference["cpu_ms_per_request"]["cloud"] == Spread.of([1.0, 1.5]).as_dict(3)
    chain_over = reference["chain_over_one_hop"]
    assert chain_over["p50_c1"] == Spread.of([2.0, 3.0]).as_dict()  # 5 / 2.5 and 6 / 2, not 6 / 2.5
    assert chain_over["rps_c64"] == Spread.of([0.5, 0.3]).as_dict()  # 400 / 800 and 300 / 1000
    assert chain_over["cpu_ms_per_request"] == Spread.of([3.5 / 1.5, 2.0]).as_dict()  # 3.5 / 1.5 and 5 / 2.5


def floor(client: float, server: float) -> dict[str, float]:
    return {"client": client, "server": server, "both": client + server}
