"""relay.batches: what a model thread made while its reader was busy goes on together; the first is never held."""

from __future__ import annotations

import asyncio

from lambdallm.local_cloud.relay import batches


def test_items_waiting_together_come_as_one_batch_and_none_ends() -> None:
    async def main() -> list[list[str]]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        for item in ("a", "b", "c"):
            queue.put_nowait(item)
        seen = []
        async for batch in batches(queue):
            seen.append(batch)
            if len(seen) == 1:
                queue.put_nowait("d")
                queue.put_nowait(None)
                queue.put_nowait("after the end")  # never read
        return seen

    assert asyncio.run(main()) == [["a", "b", "c"], ["d"]]


def test_the_first_item_is_passed_on_before_the_next_is_made() -> None:
    async def main() -> list[list[str]]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        seen: list[list[str]] = []

        async def maker() -> None:
            queue.put_nowait("first")
            while not seen:  # the reader has it before a second exists
                await asyncio.sleep(0)
            queue.put_nowait("second")
            queue.put_nowait(None)

        making = asyncio.create_task(maker())
        async for batch in batches(queue):
            seen.append(batch)
        await making
        return seen

    assert asyncio.run(asyncio.wait_for(main(), 5)) == [["first"], ["second"]]


def test_an_end_with_nothing_before_it_yields_nothing() -> None:
    async def main() -> list[list[str]]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        queue.put_nowait(None)
        return [batch async for batch in batches(queue)]

    assert asyncio.run(main()) == []
