"""A 60 s soak at 32 connections through the whole chain (instant model): no error, and no tier's memory grows
by more than 10 % between the end of a warm-up and the end of the soak."""

from __future__ import annotations

import shutil
import time

import pytest

from lambdallm.bench.loadgen import wrk
from lambdallm.bench.memory import rss_mb
from lambdallm.stack import Stack
from tests.e2e.load import BODY, Load

pytestmark = [pytest.mark.e2e, pytest.mark.soak]
CONNECTIONS = 32
WARM_UP_S = 10
SOAK_S = 60


def _load(stack: Stack, seconds: float) -> tuple[int, int]:
    """(answered 2xx, failed) of `seconds` of closed-loop load at CONNECTIONS connections: wrk if installed."""
    if shutil.which("wrk"):
        result = wrk(f"{stack.rest_url}/query", BODY, CONNECTIONS, seconds, timeout_s=10, headers=stack.auth_headers)
        return result.ok, result.errors
    with Load(stack.rest_url, workers=CONNECTIONS, timeout_s=10, headers=stack.auth_headers) as load:
        time.sleep(seconds)
    return sum(o.status == 200 for o in load.outcomes), sum(o.status != 200 for o in load.outcomes)


def test_a_60_s_soak_ends_without_errors_or_memory_growth(instant_chain: Stack) -> None:
    _load(instant_chain, WARM_UP_S)
    warm = {tier: rss_mb(process.pid) for tier, process in instant_chain.processes.items()}

    ok, failed = _load(instant_chain, SOAK_S)
    after = {tier: rss_mb(process.pid) for tier, process in instant_chain.processes.items()}

    assert ok > 0 and failed == 0, (ok, failed)
    grown = {tier: round(after[tier] / warm[tier], 3) for tier in warm}
    assert all(ratio <= 1.10 for ratio in grown.values()), {"warm_mb": warm, "after_mb": after, "ratio": grown}
