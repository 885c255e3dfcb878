"""The whole chain as child processes: the local cloud, the gRPC proxy and the REST tier (`lambdallm.commands` runs
it as `up` and `demo`; the tests and benchmarks run it too)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from lambdallm import settings
from lambdallm.tier import ANNOUNCE_FILE, SUPERVISOR_PID, TierExited, wait_for_announcement

TIERS = ("local-cloud", "proxy", "rest")
LISTEN_TIMEOUT_S = 60.0


def new_api_key() -> str:
    """A fresh API key for one run of the chain (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def stop_process(process: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM, then SIGKILL if `process` has not ended within `grace` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class StackError(RuntimeError):
    """A tier did not start, or died before the chain was ready."""


@dataclass(frozen=True)
class Ports:
    """Where each tier listens; all on loopback."""

    apigw: int
    bedrock: int
    grpc: int
    rest: int
    proxy_metrics: int = 0  # the proxy's Prometheus /metrics (the other tiers serve theirs on their own port)

    @classmethod
    def from_config(cls) -> Ports:
        """The ports of the tiers' own configuration (config/*.toml and the environment)."""
        cloud = settings.load(settings.CloudSettings, "local-cloud")
        proxy = settings.load(settings.ProxySettings, "proxy")
        return cls(
            apigw=cloud.apigw_port,
            bedrock=cloud.bedrock_port,
            grpc=proxy.port,
            rest=settings.load(settings.RestSettings, "rest").port,
            proxy_metrics=proxy.metrics_port,
        )

    @classmethod
    def any(cls) -> Ports:
        """Port 0 for every tier: each binds a free port and announces it (tests, demo, benchmarks)."""
        return cls(0, 0, 0, 0, 0)


@dataclass
class Stack:
    """Tier processes of one chain, started back to front, each wired to the address the one behind it bound.

    `tiers` is the whole chain by default; without the local cloud (or the proxy) the next tier keeps the
    backend URL (or gRPC target) of its own configuration, so the front tiers can run against a deployed backend.
    The REST tier's API key is `api_key`, a new one for each stack unless None (then its configuration's keys).
    When the stack runs the proxy, the token the REST tier presents to it is `proxy_token`, new for each stack.
    """

    ports: Ports
    engine: str | None = None
    log: IO[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    tiers: tuple[str, ...] = TIERS
    api_key: str | None = field(default_factory=new_api_key, repr=False)
    proxy_token: str = field(default_factory=new_api_key, repr=False)
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.rest}"

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Each tier's Prometheus endpoint: the REST tier's own port, the proxy's metrics port, the local Bedrock."""
        return {
            "rest": f"{self.rest_url}/metrics",
            "proxy": f"http://127.0.0.1:{self.ports.proxy_metrics}/metrics",
            "local-cloud": f"http://127.0.0.1:{self.ports.bedrock}/metrics",
        }

    @property
    def auth_headers(self) -> dict[str, str]:
        """The header that opens the REST tier's POST /query with this stack's key."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def environment(self) -> dict[str, str]:
        """The child environment: each tier's port, and the address of the tier behind it when it is ours."""
        env = {
            **os.environ,
            "LAMBDALLM_LOCAL_CLOUD_APIGW_PORT": str(self.ports.apigw),
            "LAMBDALLM_LOCAL_CLOUD_BEDROCK_PORT": str(self.ports.bedrock),
            "LAMBDALLM_PROXY_PORT": str(self.ports.grpc),
            "LAMBDALLM_PROXY_METRICS_PORT": str(self.ports.proxy_metrics),
            "LAMBDALLM_REST_PORT": str(self.ports.rest),
            "PYTHONUNBUFFERED": "1",
            SUPERVISOR_PID: str(os.getpid()),
        }
        if "local-cloud" in self.tiers:
            env["LAMBDALLM_PROXY_BACKEND_URL"] = f"http://127.0.0.1:{self.ports.apigw}"
        if "proxy" in self.tiers:
            env["LAMBDALLM_REST_GRPC_TARGET"] = f"127.0.0.1:{self.ports.grpc}"
            env["LAMBDALLM_PROXY_TOKENS"] = env["LAMBDALLM_REST_GRPC_TOKEN"] = self.proxy_token
        if self.engine:
            env["LAMBDALLM_LOCAL_CLOUD_ENGINE"] = self.engine
        if self.api_key:
            env["LAMBDALLM_REST_API_KEYS"] = self.api_key
        return env | self.extra_env

    def start(self) -> None:
        """Start the tiers back to front; each is started once the one behind it has announced its ports."""
        with tempfile.TemporaryDirectory(prefix="lambdallm-stack-") as folder:
            for tier in TIERS:
                if tier in self.tiers:
                    self._start(tier, Path(folder) / f"{tier}.json")

    def restart(self, tier: str) -> None:
        """Start `tier` again on the ports it had bound, once its process has ended (stopped, crashed, killed),
        as a supervisor would: the tiers in front of it find it at the same address."""
        process = self.processes.get(tier)
        if process is not None and process.poll() is None:
            raise StackError(f"{tier} is still running (pid {process.pid})")
        with tempfile.TemporaryDirectory(prefix="lambdallm-stack-") as folder:
            self._start(tier, Path(folder) / f"{tier}.json")

    def _start(self, tier: str, announce_file: Path) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "lambdallm", tier],
            env=self.environment() | {ANNOUNCE_FILE: str(announce_file)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops the tiers in order.
        )
        self.processes[tier] = process
        threading.Thread(target=self._relay, args=(tier, process), daemon=True).start()
        try:
            bound = wait_for_announcement(announce_file, process, LISTEN_TIMEOUT_S)
        except (TierExited, TimeoutError) as exc:
            raise StackError(f"{tier} {exc}") from exc
        self.ports = replace(self.ports, **bound)

    def _relay(self, tier: str, process: subprocess.Popen[str]) -> None:
        out = self.log or sys.stdout
        assert process.stdout is not None
        for line in process.stdout:
            out.write(f"{tier:>11} | {line}")
            out.flush()

    def wait_ready(self, timeout: float = 180.0, path: str = "/ready") -> None:
        """Poll the REST tier's `path` until it answers 200; fail fast if a tier dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for tier, process in self.processes.items():
                if process.poll() is not None:
                    raise StackError(f"{tier} exited with status {process.returncode} before the chain was ready")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.rest_url}{path}", timeout=5) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise StackError(f"the chain was not ready after {timeout:.0f} s")

    def stop(self, grace: float = 15.0) -> None:
        """Stop the tiers front to back, so that no tier outlives the one in front of it."""
        for tier in reversed(TIERS):
            process = self.processes.get(tier)
            if process is not None and process.poll() is None:
                stop_process(process, grace)

    def __enter__(self) -> Stack:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
