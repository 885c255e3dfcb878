"""The images under compose.yaml: the chain comes up to a 200 on /ready and answers one real /query.

Needs the images: `make images` builds them, then runs this file with `pytest --images`; without the flag
(`make test`) these tests are skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.images
COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
SERVICES = ("local-cloud", "proxy", "rest")
READY_TIMEOUT_S = 300  # the local cloud loads the model after the containers start


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class ComposeStack:
    """A compose project of its own, published on a free loopback port."""

    def __init__(self) -> None:
        self.project = f"lambdallm-test-{os.getpid()}"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        compose = shutil.which("podman-compose") or str(Path(sys.executable).with_name("podman-compose"))
        self.command = [compose, "--project-name", self.project, "--file", str(COMPOSE)]
        self.api_key = f"compose-test-{os.getpid()}"
        # The proxy's token as a secret file, readable by the containers' user (another uid under podman).
        self.token_file = Path(tempfile.mkdtemp(prefix="lambdallm-compose-")) / "proxy-token"
        self.token_file.write_text(secrets.token_urlsafe(32) + "\n")
        self.token_file.chmod(0o644)
        self.env = os.environ | {
            "LAMBDALLM_PUBLISH_PORT": str(self.port),
            "LAMBDALLM_REST_API_KEYS": self.api_key,
            "LAMBDALLM_PROXY_TOKEN_FILE": str(self.token_file),
        }

    def compose(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def container(self, service: str) -> str:
        names = _podman(
            "ps", "--all", "--format", "{{.Names}}", "--filter", f"label=io.podman.compose.project={self.project}"
        )
        (name,) = [n for n in names.stdout.split() if n.split("_")[1:2] == [service]]
        return name

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (status := _status(f"{self.url}/ready")) != 200:
            stopped = _podman(
                "ps",
                "--all",
                "--filter",
                f"label=io.podman.compose.project={self.project}",
                "--filter",
                "status=exited",
                "--format",
                "{{.Names}}",
            ).stdout.split()
            if stopped or time.monotonic() > deadline:
                raise AssertionError(f"/ready is {status}; stopped: {stopped}\n{self.compose('logs').stdout[-6000:]}")
            time.sleep(1)


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    stack = ComposeStack()
    started = stack.compose("up", "--detach", "--no-build")
    try:
        assert started.returncode == 0, started.stderr[-4000:]
        stack.wait_ready()
        yield stack
    finally:
        stack.compose("down", "--timeout", "10", timeout_s=180)
        shutil.rmtree(stack.token_file.parent)


def _query(stack: ComposeStack, headers: dict[str, str]) -> urllib.request.Request:
    body = {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}
    headers = {"Content-Type": "application/json", **headers}
    return urllib.request.Request(f"{stack.url}/query", data=json.dumps(body).encode(), headers=headers)


def test_the_chain_is_ready_and_answers_a_real_query(stack: ComposeStack) -> None:
    request = _query(stack, {"Authorization": f"Bearer {stack.api_key}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200
        reply = json.load(answer)

    assert reply["text"].strip()
    assert 1 <= reply["output_tokens"] <= 4
    assert reply["input_tokens"] > 0
    assert reply["finish_reason"] in ("stop", "length")


def test_a_query_without_the_key_is_refused(stack: ComposeStack) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(_query(stack, {}), timeout=30)
    assert refused.value.code == 401
    assert refused.value.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("service", SERVICES)
def test_each_images_healthcheck_passes_in_the_running_stack(stack: ComposeStack, service: str) -> None:
    # Podman runs HEALTHCHECKs from systemd timers; without systemd (here) the test runs them itself.
    result = _podman("healthcheck", "run", stack.container(service), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_every_tier_runs_as_a_non_root_user(stack: ComposeStack, service: str) -> None:
    assert _podman("exec", stack.container(service), "id", "-u").stdout.strip() == "10001"


@pytest.mark.parametrize("service", ["rest", "proxy"])
def test_the_rest_and_proxy_images_carry_no_llama_cpp(service: str) -> None:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('llama_cpp') is not None)"
    result = _podman(
        "run", "--rm", "--network", "none", f"localhost/lambdallm-{service}:latest", "python3", "-c", probe, check=False
    )
    assert result.returncode == 0, result.stderr
