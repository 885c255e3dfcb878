"""The /v1 bench figures: /v1 over /query is taken within each repetition, from the same conversation."""

from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.openai_api import OpenAIFigures, bodies


def _run(p50: float, p99: float, ok: int) -> LoadResult:
    return LoadResult(requests=ok, ok=ok, errors=0, tokens=0, duration_s=1.0, p50_ms=p50, p99_ms=p99, mean_ms=p50)


def test_both_routes_carry_the_same_conversation() -> None:
    (query_path, query), (v1_path, v1) = bodies(16).values()
    assert (query_path, v1_path) == ("/query", "/v1/chat/completions")
    assert {k: v for k, v in v1.items() if k != "model"} == query


def test_v1_over_query_is_a_ratio_within_each_repetition() -> None:
    figures = OpenAIFigures(
        c1={"query": [_run(2, 4, 1), _run(4, 8, 1)], "v1": [_run(3, 4, 1), _run(4, 4, 1)]},
        loaded={"query": [_run(1, 1, 100), _run(1, 1, 50)], "v1": [_run(1, 1, 90), _run(1, 1, 50)]},
    )
    ratio = figures.as_dict()["v1_over_query"]
    assert (ratio["p50"]["min"], ratio["p50"]["max"]) == (1.0, 1.5)
    assert (ratio["p99"]["min"], ratio["p99"]["max"]) == (0.5, 1.0)
    assert (ratio["rps_many"]["min"], ratio["rps_many"]["max"]) == (0.9, 1.0)
