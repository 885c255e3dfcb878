"""Fixtures shared by the tier tests: the fake LLM backend that each test scripts."""

import pytest

from tests.fakes.stack import fake_backend


@pytest.fixture
async def fake():
    """A fake backend on a free loopback port; queue its replies, read the requests it saw."""
    async with fake_backend() as fake:
        yield fake
