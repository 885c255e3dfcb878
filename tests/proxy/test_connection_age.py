"""A client's connection is asked to move on after max_connection_age_s (so that a REST tier resolves the proxies
again and reaches those added since), and a call under way on it runs to its end first."""

import asyncio
import time

import grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.proxy.server import connection_age
from lambdallm.settings import ProxySettings
from tests.fakes.backend import Reply
from tests.fakes.stack import proxy_channel, running_proxy

IDLE, READY = grpc.ChannelConnectivity.IDLE, grpc.ChannelConnectivity.READY


def query() -> llm_pb2.LlmQueryRequest:
    return llm_pb2.LlmQueryRequest(prompt="Hi there", max_tokens=10)


async def state_after(channel: grpc.aio.Channel, leaving: grpc.ChannelConnectivity, bound_s: float) -> object:
    """The channel's state once it is no longer `leaving`, or `leaving` if it still is after `bound_s`."""
    deadline = time.monotonic() + bound_s
    state = channel.get_state()
    while state == leaving and (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), left)
        except TimeoutError:
            break
        state = channel.get_state()
    return state


async def test_an_aged_connection_is_let_go_after_its_call_ends_and_the_next_call_connects_again(fake):
    hold = asyncio.Event()
    fake.replies.append(Reply(hold=hold))  # the first call waits until the connection has passed its age
    async with running_proxy(fake, max_connection_age_s=1.0) as proxy, proxy_channel(proxy.target) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        call = asyncio.ensure_future(stub.GenerateText(query(), timeout=30))
        await fake.wait_for_queries(1)
        assert channel.get_state() == READY
        await asyncio.sleep(2.0)  # past the age (1 s, give or take gRPC's 10 %): the GOAWAY has been sent
        hold.set()

        assert (await call).text == "echo: Hi there"  # the call under way ran to its end
        assert await state_after(channel, READY, bound_s=20) == IDLE  # then the connection was let go
        assert (await stub.GenerateText(query(), timeout=10)).text == "echo: Hi there"  # on a new one


def test_calls_under_way_have_a_whole_streams_time_to_end() -> None:
    options = dict(connection_age(ProxySettings(max_connection_age_s=300.0, stream_timeout_s=305.0)))

    assert options["grpc.max_connection_age_ms"] == 300_000
    assert options["grpc.max_connection_age_grace_ms"] > 305_000
