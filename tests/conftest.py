"""Fixtures shared by the tier tests: the fake LLM backend that each test scripts."""

import pytest

from tests.fakes.stack import fake_backend


@pytest.fixture
async def fake():
    """A fake backend on a free loopback port; queue its replies, read the requests it saw."""
    async with fake_backend() as fake:
        yield fake


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--images", action="store_true", help="run the container image tests (make images builds them)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The image tests need images that only `make images` builds: they run with --images, else are skipped."""
    if config.getoption("--images"):
        return
    skip = pytest.mark.skip(reason="needs the container images: make images (pytest --images)")
    for item in items:
        if "images" in item.keywords:
            item.add_marker(skip)
