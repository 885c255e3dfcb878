"""The REST tier and the proxy free a request's objects as it ends, by reference counting: none is left in a cycle
for the garbage collector (lambdallm/tier.py collects the young generation rarely, which is safe because of this).
Whole answers, streamed ones and streams whose client hangs up, over real HTTP and gRPC to the fake backend."""

import asyncio

import httpx
from httpx_sse import aconnect_sse

from tests.fakes.backend import Reply
from tests.fakes.stack import AUTHORIZATION
from tests.garbage import cyclic_garbage, of_types

VALID = {"prompt": "Hi there you", "max_tokens": 10}
STREAM = {"Accept": "text/event-stream"}
# A request's own objects in the REST tier (its HTTP cycle, its connection, its gRPC call, what the request's
# context holds) and in the proxy (its connection to the backend).
PER_REQUEST = {
    "RequestResponseCycle",
    "CycleTransport",
    "ProblemHttpProtocol",
    "UnaryUnaryCall",
    "UnaryStreamCall",
    "RequestTiming",
    "Answer",
    "_Connection",
}


async def test_whole_and_streamed_answers_leave_no_cycles(rest, fake):
    with cyclic_garbage() as left:
        async with httpx.AsyncClient(base_url=rest, timeout=10, headers=AUTHORIZATION) as http:
            for _ in range(10):
                assert (await http.post("/query", json=VALID)).status_code == 200
                streamed = await http.post("/query", json=VALID, headers=STREAM)
                assert streamed.status_code == 200 and "event: done" in streamed.text
        await asyncio.sleep(0.2)  # the tiers see the connections close

    assert of_types(left, PER_REQUEST) == {}, left.most_common(20)


async def test_streams_whose_clients_hang_up_leave_no_cycles(rest, fake):
    with cyclic_garbage() as left:
        for _ in range(5):
            fake.cancelled.clear()
            fake.replies.append(Reply(gates={1: asyncio.Event()}))  # never opened: the stream waits after one event
            async with (
                httpx.AsyncClient(base_url=rest, timeout=10, headers=AUTHORIZATION) as http,
                aconnect_sse(http, "POST", "/query", json=VALID, headers=STREAM) as source,
            ):
                assert (await asyncio.wait_for(anext(source.aiter_sse()), 10)).event == "text"
            await asyncio.wait_for(fake.cancelled.wait(), 5)  # the hang-up went all the way to the backend
        await asyncio.sleep(0.2)

    assert of_types(left, PER_REQUEST) == {}, left.most_common(20)
