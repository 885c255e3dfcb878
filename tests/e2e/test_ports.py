"""Tiers bind what they are given and say where; a taken port stops a tier at start, naming the port."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdallm.commands import tiers_to_run
from lambdallm.stack import Ports, Stack, StackError
from lambdallm.tier import ANNOUNCE_FILE, CannotListen, bind_tcp, wait_for_announcement

PORT_KEYS = {
    "local-cloud": "LAMBDALLM_LOCAL_CLOUD_BEDROCK_PORT",
    "proxy": "LAMBDALLM_PROXY_PORT",
    "proxy-metrics": "LAMBDALLM_PROXY_METRICS_PORT",
    "rest": "LAMBDALLM_REST_PORT",
}
# Every port a test's tier process binds is a free one, unless the test takes it.
ANY_PORT = {"LAMBDALLM_LOCAL_CLOUD_APIGW_PORT": "0", "LAMBDALLM_PROXY_PORT": "0", "LAMBDALLM_PROXY_METRICS_PORT": "0"}
# The proxy's token, which both it and the REST tier need to start at all.
TOKEN = {"LAMBDALLM_PROXY_TOKENS": "a-token", "LAMBDALLM_REST_GRPC_TOKEN": "a-token"}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on for the whole test."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_binding_a_taken_port_names_it(taken_port: int) -> None:
    with pytest.raises(CannotListen, match=f"127.0.0.1:{taken_port}"):
        bind_tcp("127.0.0.1", taken_port).listen()


@pytest.mark.e2e
@pytest.mark.parametrize("port", list(PORT_KEYS))
def test_a_tier_refuses_to_start_on_a_taken_port(port: str, taken_port: int) -> None:
    env = (
        os.environ | {"LAMBDALLM_LOCAL_CLOUD_ENGINE": "instant", "LAMBDALLM_REST_API_KEYS": "a-key"} | ANY_PORT | TOKEN
    )
    env[PORT_KEYS[port]] = str(taken_port)
    env.pop("LAMBDALLM_SUPERVISOR_PID", None)
    tier = port.removesuffix("-metrics")

    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", tier], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 4, result.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in result.stderr


@pytest.mark.e2e
def test_a_second_proxy_cannot_share_the_first_ones_port(tmp_path: Path) -> None:
    announced = tmp_path / "proxy.json"
    env = os.environ | ANY_PORT | TOKEN | {ANNOUNCE_FILE: str(announced)}
    first = subprocess.Popen(
        [sys.executable, "-m", "lambdallm", "proxy"], env=env, text=True, stderr=subprocess.DEVNULL
    )
    try:
        port = wait_for_announcement(announced, first, 60)["grpc"]
        env = os.environ | ANY_PORT | TOKEN | {"LAMBDALLM_PROXY_PORT": str(port)}

        second = subprocess.run(
            [sys.executable, "-m", "lambdallm", "proxy"], env=env, capture_output=True, text=True, timeout=60
        )

        assert second.returncode == 4
        assert f"127.0.0.1:{port}" in second.stderr
    finally:
        first.terminate()
        first.wait(30)


@pytest.mark.e2e
def test_a_stack_fails_when_its_rest_port_is_taken_even_if_something_answers_there(taken_port: int) -> None:
    stack = Stack(Ports(0, 0, 0, taken_port), log=io.StringIO(), tiers=("rest",), extra_env=TOKEN)

    with pytest.raises(StackError, match="rest exited with status 4"):
        stack.start()
    stack.stop()


def test_up_starts_only_the_tiers_the_configuration_points_at(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tiers_to_run() == ("local-cloud", "proxy", "rest")

    monkeypatch.setenv("LAMBDALLM_PROXY_BACKEND_URL", "https://abc.execute-api.us-east-1.amazonaws.com/prod")
    assert tiers_to_run() == ("proxy", "rest")

    monkeypatch.setenv("LAMBDALLM_REST_GRPC_TARGET", "proxy.internal:50051")
    assert tiers_to_run() == ("rest",)


@pytest.mark.e2e
def test_a_stack_on_port_zero_learns_every_bound_port() -> None:
    with Stack(Ports.any(), engine="instant", log=io.StringIO()) as stack:
        bound = (stack.ports.apigw, stack.ports.bedrock, stack.ports.grpc, stack.ports.rest, stack.ports.proxy_metrics)
        assert 0 not in bound
        assert len(set(bound)) == 5
