"""The bench's pure pieces: spreads, percentiles and wrk's summary line."""

from __future__ import annotations

import pytest

from lambdallm.bench.loadgen import LoadError, parse
from lambdallm.bench.stats import Spread, percentile

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:1/query
WRK_JSON {"requests":10,"duration_us":2000000,"ok":8,"non_2xx":2,"tokens":64,"socket_errors":1,"timeouts":0,\
"p50_us":1500,"p99_us":9000,"mean_us":2000.0,"max_us":9100,"percentiles_us":{"50":1500,"99":9000}}
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
    assert result.p50_ms == 1.5
    assert result.rps == 4.0
    assert result.tokens_per_s_per_request == 4000.0  # 8 tokens a request in 2 ms each
    assert result.percentiles_ms == {"50": 1.5, "99": 9.0}


def test_wrk_without_summary_is_an_error() -> None:
    with pytest.raises(LoadError, match="without a summary"):
        parse("unable to connect to 127.0.0.1:1 Connection refused", returncode=1)
