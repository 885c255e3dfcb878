"""The tracing cost figures: on over off is taken within each repetition; the traced chain traces every request."""

from pathlib import Path

from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.tracing_cost import TracingFigures, traced_env


def _run(p50: float, ok: int, errors: int = 0) -> LoadResult:
    return LoadResult(requests=ok, ok=ok, errors=errors, tokens=0, duration_s=1.0, p50_ms=p50, p99_ms=p50, mean_ms=p50)


def test_on_over_off_is_a_ratio_within_each_repetition() -> None:
    figures = TracingFigures(
        c1={"off": [_run(2, 1), _run(4, 1)], "on": [_run(3, 1), _run(4, 1)]},
        loaded={"off": [_run(1, 100), _run(1, 50)], "on": [_run(1, 90), _run(1, 50, errors=2)]},
    )
    result = figures.as_dict()
    ratio = result["on_over_off_rps_many"]
    assert (ratio["min"], ratio["max"]) == (0.9, 1.0)
    assert (result["on_over_off_p50"]["min"], result["on_over_off_p50"]["max"]) == (1.0, 1.5)
    assert result["errors_many"] == 2
    assert result["off_rps_many"]["max"] == 100.0


def test_every_tier_of_the_traced_chain_samples_every_request_into_one_file(tmp_path: Path) -> None:
    env = traced_env(tmp_path / "spans.jsonl")
    for tier in ("REST", "PROXY", "LOCAL_CLOUD"):
        assert env[f"LAMBDALLM_{tier}_TRACE_EXPORTER"] == "file"
        assert env[f"LAMBDALLM_{tier}_TRACE_RATIO"] == "1.0"
        assert env[f"LAMBDALLM_{tier}_TRACE_FILE"] == str(tmp_path / "spans.jsonl")
