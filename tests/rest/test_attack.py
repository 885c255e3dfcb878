"""Issue 18's attack: 200 unauthenticated connections hold the REST tier at once (trickled header blocks,
pipelined Swagger UI downloads never read, stalled bodies) while a client with a key sends 50 queries one after
another: every one is answered 200. How much slower they are is the bench's figure, not this test's."""

import asyncio

import httpx
import pytest

from lambdallm.bench.attack import Attack
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.rest.test_edge import VALID


@pytest.fixture
async def attacked(proxy):
    """A REST tier (4 slots) under the attack."""
    async with running_rest(proxy.target, max_in_flight=4) as url:
        attack = Attack(int(url.rsplit(":", 1)[1]), connections=200)
        await asyncio.to_thread(attack.start)
        try:
            yield url
        finally:
            await asyncio.to_thread(attack.stop)


async def test_key_holders_are_served_while_200_unauthenticated_connections_attack(attacked):
    async with httpx.AsyncClient(base_url=attacked, timeout=30, headers=AUTHORIZATION) as client:
        statuses = [(await client.post("/query", json=VALID)).status_code for _ in range(50)]

    assert statuses == [200] * 50
