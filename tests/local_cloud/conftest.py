"""Fixtures for the local cloud: clouds on free loopback ports (the real models once per session), boto3 clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambdallm.local_cloud.engines import Completion, Emit, GenerationRequest, InstantEngine
from lambdallm.local_cloud.server import LocalCloud, running_local_cloud
from lambdallm.settings import CloudSettings

MODEL_ID = "amazon.titan-text-premier-v1:0"
GEMMA_ID = "google.gemma-3-270m"


GATE_TIMEOUT_S = 120.0  # a gate the test forgot to open: fail the generation loudly, never let it through


class GatedEngine(InstantEngine):
    """The instant echo, but queued like the real model (`slots` at a time, on worker threads) and held until
    `gate` opens; records what ran. A gate still shut after GATE_TIMEOUT_S is the test's bug: the generation
    fails, and `timed_out` says so to the fixture, which fails the test."""

    def __init__(self, slots: int = 1) -> None:
        super().__init__()
        self.slots = slots
        self.gate = threading.Event()
        self.started = threading.Event()
        self.prompts: list[str] = []
        self.timed_out = False
        self._workers = ThreadPoolExecutor(max_workers=slots)

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        self.prompts.append(request.prompt)
        self.started.set()
        if not self.gate.wait(timeout=GATE_TIMEOUT_S):
            self.timed_out = True
            raise AssertionError(f"the test did not open the gate within {GATE_TIMEOUT_S} s")
        return super().generate(request, emit, cancelled)

    def submit(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Future[Completion]:
        return self._workers.submit(self.generate, request, emit, cancelled)

    def close(self) -> None:
        self.gate.set()
        self._workers.shutdown(wait=False, cancel_futures=True)


def settings(**overrides: Any) -> CloudSettings:
    """Local cloud settings on free loopback ports."""
    return CloudSettings(**{"host": "127.0.0.1", "apigw_port": 0, "bedrock_port": 0, **overrides})


def bedrock_client(cloud: LocalCloud) -> Any:
    """A plain boto3 bedrock-runtime client on the local endpoint, without retries (tests see each answer)."""
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=cloud.bedrock_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60),
    )


@pytest.fixture(scope="session")
def model_cloud() -> Iterator[LocalCloud]:
    """The real models, loaded once per session (context kept small so an over-long prompt is cheap)."""
    pytest.importorskip("llama_cpp")
    with running_local_cloud(settings(engine="llama", context_tokens=512, queue_size=4)) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def instant_cloud() -> Iterator[LocalCloud]:
    """The deterministic echo engine behind both servers."""
    with running_local_cloud(settings(engine="instant")) as cloud:
        yield cloud


@pytest.fixture
def gated() -> Iterator[tuple[LocalCloud, GatedEngine]]:
    """A cloud whose model waits for the test: one generating, one waiting at most."""
    engine = GatedEngine()
    with running_local_cloud(settings(queue_size=1), engine=engine) as cloud:
        try:
            yield cloud, engine
        finally:
            engine.gate.set()
    assert not engine.timed_out, "a generation waited for a gate the test never opened"
