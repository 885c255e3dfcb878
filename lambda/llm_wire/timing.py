"""Server-Timing across the tiers: each tier passes back how long it took, with every tier behind it (its
inclusive time), and the REST tier answers the time spent in each one alone (docs/tracing.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

HEADER = "Server-Timing"
METADATA_KEY = "server-timing"  # the gRPC metadata the proxy answers with (trailing metadata)
TIERS = ("rest", "proxy", "backend", "model")  # outermost first


def format_timing(durations: Mapping[str, float], digits: int = 3) -> str:
    """A Server-Timing value (RFC-less but W3C's syntax): `name;dur=ms` entries, in the mapping's order."""
    return ", ".join(f"{name};dur={ms:.{digits}f}" for name, ms in durations.items())


def parse_timing(value: str) -> dict[str, float]:
    """The entries of a Server-Timing value that have a finite, non-negative `dur`; anything else is skipped."""
    durations: dict[str, float] = {}
    for entry in value.split(","):
        name, _, params = entry.partition(";")
        name = name.strip()
        for param in params.split(";") if name else ():
            key, _, number = param.partition("=")
            if key.strip().lower() == "dur" and (ms := finite_ms(number.strip().strip('"'))) is not None:
                durations[name] = ms
    return durations


def finite_ms(value: object) -> float | None:
    """`value` as milliseconds, or None unless it is a finite, non-negative number."""
    try:
        ms = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return ms if 0 <= ms < math.inf else None


def exclusive_parts(total_ms: float, inclusive: Mapping[str, float], tiers: Iterable[str] = TIERS) -> dict[str, float]:
    """The time spent in each tier alone, outermost first, from the outermost tier's total and the inclusive times
    the inner tiers reported (a tier that reported none counts as part of the one outside it). Each inner time is
    capped by the one outside it, so no part is negative and the parts add up to exactly `total_ms`."""
    known = [(name, inclusive[name]) for name in tiers if name in inclusive]
    outer_name, outer_ms = next(iter(tiers)), total_ms
    parts: dict[str, float] = {}
    for name, ms in known:
        if name == outer_name:
            continue
        ms = min(ms, outer_ms)
        parts[outer_name] = outer_ms - ms
        outer_name, outer_ms = name, ms
    parts[outer_name] = outer_ms
    return parts


def rounded(total_ms: float, parts: Mapping[str, float]) -> dict[str, float]:
    """`total`, then each part, rounded to 0.1 ms so that the parts never add up to more than the total (parts
    down, the total up)."""
    return {"total": math.ceil(total_ms * 10) / 10} | {name: math.floor(ms * 10) / 10 for name, ms in parts.items()}
