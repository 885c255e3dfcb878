"""The model queue: as many at once as the model has slots, then arrival order; refused when full, dropped when the
caller leaves."""

from __future__ import annotations

import asyncio

import pytest

from lambdallm.local_cloud.engines import GenerationRequest
from lambdallm.local_cloud.scheduler import Overloaded, Scheduler, Timeline
from tests.local_cloud.conftest import GatedEngine


async def until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.005)


async def test_requests_run_in_arrival_order_and_overflow_is_refused() -> None:
    engine = GatedEngine()
    scheduler = Scheduler(engine, queue_size=2)
    try:
        first = asyncio.create_task(scheduler.generate(GenerationRequest("first")))
        await asyncio.wait_for(until(engine.started.is_set), 10)
        queued = [asyncio.create_task(scheduler.generate(GenerationRequest(p))) for p in ("second", "third")]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await scheduler.generate(GenerationRequest("fourth"))
        engine.gate.set()
        results = await asyncio.gather(first, *queued)
        assert [r.text for r in results] == ["first", "second", "third"]
        assert engine.prompts == ["first", "second", "third"]
    finally:
        engine.gate.set()
        scheduler.close()


async def test_a_request_cancelled_while_queued_never_reaches_the_model() -> None:
    engine = GatedEngine()
    scheduler = Scheduler(engine, queue_size=1)
    try:
        first = asyncio.create_task(scheduler.generate(GenerationRequest("first")))
        await asyncio.wait_for(until(engine.started.is_set), 10)
        gone = asyncio.create_task(scheduler.generate(GenerationRequest("gone")))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        # Its place in the queue is free again at once.
        third = asyncio.create_task(scheduler.generate(GenerationRequest("third")))
        engine.gate.set()
        assert (await first).text == "first"
        assert (await third).text == "third"
        assert engine.prompts == ["first", "third"]
    finally:
        engine.gate.set()
        scheduler.close()


async def test_beyond_the_slots_and_the_queue_requests_are_refused() -> None:
    engine = GatedEngine(slots=2)
    scheduler = Scheduler(engine, queue_size=1)
    try:
        admitted = [asyncio.create_task(scheduler.generate(GenerationRequest(p))) for p in ("a", "b", "c")]
        await asyncio.wait_for(until(lambda: len(engine.prompts) == 2), 10)
        assert scheduler.waiting == 1
        with pytest.raises(Overloaded):
            await scheduler.generate(GenerationRequest("d"))
        engine.gate.set()
        assert [r.text for r in await asyncio.gather(*admitted)] == ["a", "b", "c"]
        # Every place is free again.
        assert (await scheduler.generate(GenerationRequest("e"))).text == "e"
    finally:
        scheduler.close()


async def test_a_timeline_notes_the_wait_for_a_slot_the_first_token_and_the_end() -> None:
    engine = GatedEngine(slots=1)
    scheduler = Scheduler(engine, queue_size=1)
    first, second = Timeline(), Timeline()
    try:
        running = asyncio.create_task(scheduler.generate(GenerationRequest("first one"), timeline=first))
        await asyncio.wait_for(until(engine.started.is_set), 10)
        queued = asyncio.create_task(scheduler.generate(GenerationRequest("second one"), timeline=second))
        await asyncio.sleep(0.01)
        assert first.slot == first.queued and not second.slot  # the first had a slot at once; the second waits
        engine.gate.set()
        await asyncio.gather(running, queued)
    finally:
        engine.gate.set()
        scheduler.close()
    assert first.queued <= first.first_token <= first.ended
    # The second got its slot when the first freed it, after it had come, and then made its tokens.
    assert second.queued < second.slot <= second.first_token <= second.ended
    assert second.slot >= first.first_token


async def test_without_a_timeline_the_caller_s_emit_is_the_engine_s() -> None:
    engine = GatedEngine(slots=1)
    engine.gate.set()
    scheduler = Scheduler(engine, queue_size=1)
    pieces: list[str] = []
    try:
        await scheduler.generate(GenerationRequest("two words"), lambda text, _: pieces.append(text))
    finally:
        scheduler.close()
    assert "".join(pieces) == "two words"
