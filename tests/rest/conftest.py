"""Fixtures: fake backend -> real proxy -> REST tier over real HTTP, and an HTTP client for it."""

import httpx
import pytest

from tests.fakes.stack import AUTHORIZATION, running_proxy, running_rest


@pytest.fixture
async def proxy(fake):
    async with running_proxy(fake) as running:
        yield running


@pytest.fixture
async def rest(proxy):
    async with running_rest(proxy.target) as url:
        yield url


@pytest.fixture
async def http(rest):
    async with httpx.AsyncClient(base_url=rest, timeout=10, headers=AUTHORIZATION) as client:
        yield client
