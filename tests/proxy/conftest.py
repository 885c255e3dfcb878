"""Fixtures: a fake backend, a real proxy in front of it, and a channel to the proxy."""

import pytest

from generated.llm.v1 import llm_pb2_grpc
from tests.fakes.stack import fake_backend, proxy_channel, running_proxy


@pytest.fixture
async def proxy():
    async with fake_backend() as fake, running_proxy(fake) as running:
        yield running


@pytest.fixture
async def channel(proxy):
    async with proxy_channel(proxy.target) as channel:
        yield channel


@pytest.fixture
def stub(channel):
    return llm_pb2_grpc.LlmServiceStub(channel)
