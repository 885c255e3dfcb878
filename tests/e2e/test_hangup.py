"""A client that hangs up stops the model's work, whole answers as well as streams: real model, two slots."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from lambdallm.stack import Stack
from tests.scrape import Samples, scrape

pytestmark = [pytest.mark.e2e, pytest.mark.model]
# 150 tokens: about 2 s of model time each here, far longer than the clients wait.
ABANDONED = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,", "max_tokens": 150, "temperature": 0}


def total(scraped: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's series that carry `labels` (every model's)."""
    wanted = set(labels.items())
    return sum(value for (sample, series), value in scraped.items() if sample == name and wanted <= set(series))


async def abandon(stack: Stack, count: int, wait_s: float) -> None:
    """Send `count` whole-answer queries at once and give up on each after `wait_s`, as `curl -m` does."""
    async with httpx.AsyncClient(timeout=wait_s, headers=stack.auth_headers) as client:
        queries = (client.post(f"{stack.rest_url}/query", json=ABANDONED) for _ in range(count))
        results = await asyncio.gather(*queries, return_exceptions=True)
    assert all(isinstance(result, httpx.TimeoutException) for result in results), results


def test_abandoned_whole_answers_free_every_model_slot_within_a_few_tokens(two_slot_chain: Stack) -> None:
    metrics = two_slot_chain.metrics_urls["local-cloud"]

    asyncio.run(abandon(two_slot_chain, 6, wait_s=0.5))
    gone = scrape(metrics)
    left_at = time.monotonic()
    while True:  # the model is idle again: no slot generating, nothing queued
        now = scrape(metrics)
        idle = total(now, "lambdallm_bedrock_busy_slots") == total(now, "lambdallm_bedrock_queue_depth") == 0
        if idle or time.monotonic() - left_at > 60:
            break
        time.sleep(0.02)

    assert idle, "the model was still busy 60 s after its clients had gone"
    # Had the six generations run to their end, the two slots would have made about 450 more steps (900 tokens)
    # after the clients left; stopped, each makes at most a few while the hang-up crosses the tiers.
    steps = total(now, "lambdallm_bedrock_decode_steps_total", kind="generate")
    after = steps - total(gone, "lambdallm_bedrock_decode_steps_total", kind="generate")
    assert after <= 6 * 8, f"{after:g} generate steps after the clients left ({time.monotonic() - left_at:.2f} s)"
