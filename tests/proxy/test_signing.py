"""The proxy's SigV4 signer: the region it signs for, a clear stop when the AWS chain has no credentials, and
credentials refreshed off the event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.proxy.signing import BackendSigner, backend_region
from lambdallm.settings import ProxySettings, SettingsError
from tests.fakes.backend import FakeBackend
from tests.fakes.stack import proxy_channel, running_proxy


@pytest.mark.parametrize(
    ("url", "region", "expected"),
    [
        ("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", "", "eu-west-3"),
        ("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", "us-west-2", "us-west-2"),
        ("http://127.0.0.1:3000", "", "us-east-1"),
    ],
)
def test_the_region_is_the_setting_else_the_urls_else_the_local_clouds(url: str, region: str, expected: str) -> None:
    assert backend_region(ProxySettings(backend_url=url, backend_region=region)) == expected


def test_iam_without_credentials_stops_the_proxy_naming_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(SettingsError, match=r"no credentials.*AWS_ACCESS_KEY_ID"):
        BackendSigner.from_settings(ProxySettings(backend_auth="iam"))
    assert BackendSigner.from_settings(ProxySettings()) is None


# A credential_process that answers its first call at once and every later one (a refresh) only once the test
# opens the gate (or after 10 s, so that a proxy that blocks its event loop on it is not stuck for ever).
CREDENTIAL_PROCESS = """
import datetime, json, pathlib, sys, time
folder = pathlib.Path(sys.argv[1])
calls = folder / "calls"
n = len(calls.read_text()) if calls.exists() else 0
calls.write_text("x" * (n + 1))
minutes = int(sys.argv[2]) if n == 0 else 60
if n:
    (folder / f"waiting{n}").touch()
    deadline = time.time() + 10
    while not (folder / "gate").exists() and time.time() < deadline:
        time.sleep(0.01)
    (folder / f"returned{n}").touch()
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
print(json.dumps({"Version": 1, "AccessKeyId": f"key{n}", "SecretAccessKey": "secret", "SessionToken": "token",
                  "Expiration": expires.isoformat()}))
"""
QUERY = llm_pb2.LlmQueryRequest(prompt="Hi there", max_tokens=3)


@pytest.fixture
def credential_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Path]:
    """Make the standard AWS chain's only source CREDENTIAL_PROCESS, whose first credentials expire in the given
    minutes; returns the folder where it leaves its marks (and where the test opens its gate)."""

    def use(first_minutes: int) -> Path:
        script = tmp_path / "credentials.py"
        script.write_text(CREDENTIAL_PROCESS)
        config = tmp_path / "config"
        config.write_text(f"[default]\ncredential_process = {sys.executable} {script} {tmp_path} {first_minutes}\n")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        return tmp_path

    return use


async def _appears(path: Path) -> None:
    async def poll() -> None:
        while not path.exists():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 30)


def _signing_keys(fake: FakeBackend) -> list[str]:
    return [headers["Authorization"].split("Credential=")[1].split("/")[0] for headers, _ in fake.requests]


async def test_calls_and_health_checks_go_on_with_valid_credentials_while_a_refresh_waits(
    fake: FakeBackend, credential_process: Callable[[int], Path]
) -> None:
    folder = credential_process(12)  # within botocore's advisory window (15 min): due for a refresh, still valid
    async with running_proxy(fake, backend_auth="iam") as proxy, proxy_channel(proxy.target) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        first = await stub.GenerateText(QUERY, timeout=30)  # starts the refresh
        await _appears(folder / "waiting1")
        second = await stub.GenerateText(QUERY, timeout=30)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        refreshing = not (folder / "returned1").exists()
        (folder / "gate").touch()
        await _appears(folder / "returned1")
        while _signing_keys(fake)[-1] != "key1":  # the refreshed credentials are taken up once they arrive
            await stub.GenerateText(QUERY, timeout=30)
            await asyncio.sleep(0.01)

    assert refreshing, "the calls and the health check were answered only after the refresh"
    assert first.text and second.text
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert _signing_keys(fake)[:3] == ["key0"] * 3
    assert len((folder / "calls").read_text()) == 2  # one refresh


async def test_expiring_credentials_hold_signed_calls_for_one_shared_refresh_and_nothing_else(
    fake: FakeBackend, credential_process: Callable[[int], Path]
) -> None:
    folder = credential_process(5)  # within botocore's mandatory window (10 min): not to be used any more
    async with running_proxy(fake, backend_auth="iam") as proxy, proxy_channel(proxy.target) as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        calls = [asyncio.ensure_future(stub.GenerateText(QUERY, timeout=30)) for _ in range(3)]
        await _appears(folder / "waiting1")
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # a call that needs no signature is answered meanwhile
            await stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="", max_tokens=1), timeout=30)
        waiting = not any(call.done() for call in calls) and not (folder / "returned1").exists()
        (folder / "gate").touch()
        replies = await asyncio.gather(*calls)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert waiting, "the event loop was blocked by the refresh"
    assert all(reply.text for reply in replies)
    assert _signing_keys(fake) == ["key1"] * 3
    assert len((folder / "calls").read_text()) == 2  # one refresh for the three calls
