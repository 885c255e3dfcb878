"""Whole chains of real processes on free loopback ports: the local cloud, the gRPC proxy, the REST tier."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from lambdallm.stack import Ports, Stack


def _stack(engine: str, **env: str) -> Iterator[Stack]:
    log = io.StringIO()  # the tiers' output, shown only when the chain fails to start
    stack = Stack(Ports.any(), engine=engine, log=log, extra_env=env)
    try:
        with stack:
            yield stack
    except Exception:
        print(log.getvalue())
        raise


@pytest.fixture(scope="session")
def model_chain() -> Iterator[Stack]:
    """The whole chain with the real model behind the local Bedrock endpoint."""
    yield from _stack("llama")


@pytest.fixture(scope="session")
def instant_chain() -> Iterator[Stack]:
    """The whole chain with the deterministic instant model (contract tests)."""
    yield from _stack("instant")


@pytest.fixture(scope="module")
def word_by_word_chain() -> Iterator[Stack]:
    """The instant chain with stream_batch_ms 0, so that its streams come in many events: the instant model makes
    a whole answer at once, which the default sends in two, and no client could leave in the middle of one."""
    yield from _stack("instant", LAMBDALLM_PROXY_STREAM_BATCH_MS="0")


@pytest.fixture
def one_slot_chain() -> Iterator[Stack]:
    """The real chain whose model generates one request at a time: the next one waits until the slot is free."""
    yield from _stack("llama", LAMBDALLM_LOCAL_CLOUD_SLOTS="1")


@pytest.fixture
def impatient_chain() -> Iterator[Stack]:
    """The real chain with a REST deadline (5 s) far shorter than a long generation, and longer than a token."""
    yield from _stack("llama", LAMBDALLM_REST_DEADLINE_S="5.0", LAMBDALLM_REST_STREAM_DEADLINE_S="5.0")


@pytest.fixture(scope="module")
def two_slot_chain() -> Iterator[Stack]:
    """The real chain with a model of two slots, which a few requests fill (the rest queue)."""
    yield from _stack("llama", LAMBDALLM_LOCAL_CLOUD_SLOTS="2")
