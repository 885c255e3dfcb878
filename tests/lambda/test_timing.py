"""Server-Timing's arithmetic (llm_wire.timing): parsing what a tier passes back, and the parts the REST tier
answers, which never add up to more than the total."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_wire.timing import exclusive_parts, format_timing, parse_timing, rounded


def test_a_value_is_parsed_back_and_entries_without_a_duration_are_skipped() -> None:
    value = format_timing({"proxy": 12.5, "backend": 3.25}) + ', cache;desc="hit", model;dur=-1, x;dur=inf, y;dur=2'
    assert parse_timing(value) == {"proxy": 12.5, "backend": 3.25, "y": 2.0}


def test_each_tier_alone_is_its_time_less_the_tier_behind_it() -> None:
    parts = exclusive_parts(100.0, {"proxy": 90.0, "backend": 60.0, "model": 50.0})
    assert parts == {"rest": 10.0, "proxy": 30.0, "backend": 10.0, "model": 50.0}


def test_a_tier_that_said_nothing_counts_in_the_one_outside_it() -> None:
    assert exclusive_parts(100.0, {"proxy": 90.0, "model": 50.0}) == {"rest": 10.0, "proxy": 40.0, "model": 50.0}
    assert exclusive_parts(100.0, {}) == {"rest": 100.0}


durations = st.floats(min_value=0, max_value=1e7, allow_nan=False)


@given(durations, st.dictionaries(st.sampled_from(["proxy", "backend", "model"]), durations))
def test_the_parts_are_never_negative_nor_more_than_the_total(total: float, inclusive: dict[str, float]) -> None:
    timing = rounded(total, exclusive_parts(total, inclusive))
    whole = timing.pop("total")
    assert all(ms >= 0 for ms in timing.values())
    assert sum(timing.values()) <= whole + 1e-6 * max(whole, 1)
