"""The whole chain as child processes: the local cloud, the gRPC proxy and the REST tier (`up`, `demo`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lambdallm import settings
from lambdallm.cli import SUPERVISOR_PID

TIERS = ("local-cloud", "proxy", "rest")


class StackError(RuntimeError):
    """A tier did not start, or died before the chain was ready."""


@dataclass(frozen=True)
class Ports:
    """Where each tier listens; all on loopback."""

    apigw: int
    bedrock: int
    grpc: int
    rest: int

    @classmethod
    def from_config(cls) -> Ports:
        """The ports of the tiers' own configuration (config/*.toml and the environment)."""
        cloud = settings.load(settings.CloudSettings, "local-cloud")
        return cls(
            apigw=cloud.apigw_port,
            bedrock=cloud.bedrock_port,
            grpc=settings.load(settings.ProxySettings, "proxy").port,
            rest=settings.load(settings.RestSettings, "rest").port,
        )

    @classmethod
    def free(cls) -> Ports:
        """Four ports that were free on 127.0.0.1 a moment ago (for tests and benchmarks)."""
        return cls(*(free_port() for _ in range(4)))


def free_port() -> int:
    """A TCP port that nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """The three server processes of one chain, wired to each other through environment variables."""

    ports: Ports
    engine: str | None = None
    log: IO[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.rest}"

    def environment(self) -> dict[str, str]:
        """The child environment: each tier's port, and the address of the tier behind it."""
        env = {
            **os.environ,
            "LAMBDALLM_LOCAL_CLOUD_APIGW_PORT": str(self.ports.apigw),
            "LAMBDALLM_LOCAL_CLOUD_BEDROCK_PORT": str(self.ports.bedrock),
            "LAMBDALLM_PROXY_PORT": str(self.ports.grpc),
            "LAMBDALLM_PROXY_BACKEND_URL": f"http://127.0.0.1:{self.ports.apigw}",
            "LAMBDALLM_REST_PORT": str(self.ports.rest),
            "LAMBDALLM_REST_GRPC_TARGET": f"127.0.0.1:{self.ports.grpc}",
            "PYTHONUNBUFFERED": "1",
            SUPERVISOR_PID: str(os.getpid()),
            **self.extra_env,
        }
        if self.engine:
            env["LAMBDALLM_LOCAL_CLOUD_ENGINE"] = self.engine
        return env

    def start(self) -> None:
        """Start every tier, each log line prefixed with its tier's name."""
        env = self.environment()
        for tier in TIERS:
            process = subprocess.Popen(
                [sys.executable, "-m", "lambdallm", tier],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops the tiers in order.
            )
            self.processes[tier] = process
            threading.Thread(target=self._relay, args=(tier, process), daemon=True).start()

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
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def up(engine: str | None = None) -> int:
    """Run the whole chain until Ctrl-C or SIGTERM, logs of all tiers in this terminal."""
    stack = Stack(Ports.from_config(), engine=engine)
    with _sigterm_as_interrupt():
        try:
            with stack:
                print(
                    f"λλM is up: REST {stack.rest_url} (Swagger UI at {stack.rest_url}/ui/), "
                    f"gRPC 127.0.0.1:{stack.ports.grpc}, API Gateway 127.0.0.1:{stack.ports.apigw}, "
                    f"Bedrock 127.0.0.1:{stack.ports.bedrock}. Ctrl-C stops all.",
                    flush=True,
                )
                while all(p.poll() is None for p in stack.processes.values()):
                    time.sleep(0.5)
                print("a tier stopped; stopping the others", file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            return 0
        except StackError as exc:
            print(f"lambdallm up: {exc}", file=sys.stderr)
            return 1


def demo(engine: str | None = None, max_tokens: int | None = None) -> int:
    """Bring the chain up on free ports, run `bedrest passive` through it, and stop it."""
    log_path = Path(".lambdallm") / "demo.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log, _sigterm_as_interrupt():
        stack = Stack(Ports.free(), engine=engine, log=log)
        print("Starting the local cloud (real model), the gRPC proxy and the REST tier...", flush=True)
        try:
            with stack:
                print(f"The chain is ready at {stack.rest_url} (tier logs: {log_path}).\n", flush=True)
                command = ["bedrest", "--host", "127.0.0.1", "--port", str(stack.ports.rest), "passive"]
                if max_tokens is not None:
                    command[1:1] = ["--max-tokens", str(max_tokens)]
                bedrest = Path(sys.executable).with_name("bedrest")
                command[0] = str(bedrest) if bedrest.exists() else command[0]
                return subprocess.run(command, env=stack.environment()).returncode
        except StackError as exc:
            print(f"lambdallm demo: {exc}; see {log_path}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
