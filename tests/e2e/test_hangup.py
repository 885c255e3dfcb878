"""A client that hangs up stops the model's work, whole answers as well as streams: real model, two slots."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from lambdallm.stack import Stack
from tests.scrape import Samples, scrape, scrape_async

pytestmark = [pytest.mark.e2e, pytest.mark.model]
# 150 tokens each: six of them are about 450 steps of the two slots, far longer than the clients wait.
ABANDONED = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,", "max_tokens": 150, "temperature": 0}
BUSY, QUEUED = "lambdallm_bedrock_busy_slots", "lambdallm_bedrock_queue_depth"
STEPS = "lambdallm_bedrock_decode_steps_total"
# Generous next to the second or so it takes here, and below the Lambda's 25 s read timeout of Bedrock, which is
# what frees a slot that a hang-up does not (on a machine slow enough that 450 steps outlast it).
IDLE_WITHIN_S = 20


def total(scraped: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's series that carry `labels` (every model's)."""
    wanted = set(labels.items())
    return sum(value for (sample, series), value in scraped.items() if sample == name and wanted <= set(series))


async def abandon(stack: Stack, count: int, metrics: str) -> None:
    """Send `count` whole-answer queries at once, and hang up on all of them once the model has them all
    (generating or queued), at least 0.5 s after sending them."""
    async with httpx.AsyncClient(timeout=60, headers=stack.auth_headers) as client:
        queries = [asyncio.ensure_future(client.post(f"{stack.rest_url}/query", json=ABANDONED)) for _ in range(count)]
        sent = time.monotonic()
        while True:
            scraped = await scrape_async(client, metrics)
            if total(scraped, BUSY) + total(scraped, QUEUED) == count and time.monotonic() - sent >= 0.5:
                break
            assert not any(query.done() for query in queries), [query.result() for query in queries if query.done()]
            await asyncio.sleep(0.02)
        for query in queries:
            query.cancel()
        await asyncio.gather(*queries, return_exceptions=True)


def test_abandoned_whole_answers_free_every_model_slot_within_a_few_tokens(two_slot_chain: Stack) -> None:
    url, metrics = two_slot_chain.rest_url, two_slot_chain.metrics_urls["local-cloud"]
    warm = httpx.post(f"{url}/query", json={"prompt": "Hi", "max_tokens": 1}, headers=two_slot_chain.auth_headers)
    assert warm.status_code == 200, warm.text  # the model is loaded and has generated

    asyncio.run(abandon(two_slot_chain, 6, metrics))
    gone, left_at = scrape(metrics), time.monotonic()
    while True:  # until the model is idle again: no slot generating, nothing queued
        now = scrape(metrics)
        idle = total(now, BUSY) == total(now, QUEUED) == 0
        if idle or time.monotonic() - left_at > IDLE_WITHIN_S:
            break
        time.sleep(0.02)

    assert idle, f"the model was still busy {IDLE_WITHIN_S} s after its clients had gone"
    # Run to their end, the six generations would take about 450 steps of the two slots after the clients left
    # (252 in 25 s here before the fix, until the Lambda's read timeout). Stopped, each makes a few at most: the
    # two generating while the hang-up crosses the tiers, each queued one as it takes a slot (3 in all here).
    after = total(now, STEPS, kind="generate") - total(gone, STEPS, kind="generate")
    assert after <= 4 * 6, f"{after:g} generate steps after the clients left ({time.monotonic() - left_at:.2f} s)"
