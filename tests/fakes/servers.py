"""Real servers from Debian's packages (redis-server, haproxy) as child processes on free loopback ports, installed
with apt-get when missing; a test that needs one is skipped, saying why, only where it cannot be installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

_apt_updated = False


def debian_binary(name: str, package: str) -> str:
    """The path of `name`, installing Debian's `package` with apt-get first if it is missing (as root); else skip."""
    global _apt_updated
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(
            f"{name} is missing and cannot be installed here (needs apt-get as root: apt-get install {package})"
        )
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _apt(["update", "-qq"], environment)
        _apt_updated = True
    result = _apt(["install", "-y", "-qq", package], environment)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        pytest.skip(f"{name} is missing and apt-get install {package} failed: {result.stderr.strip()[-300:]}")
    return found


def _apt(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )


def free_port() -> int:
    """A loopback port free now (the server that takes it retries on a race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Poll until something accepts on `port`; fail if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class RedisServer:
    """A redis-server child process on loopback, without persistence; `stop` and `start` keep its port."""

    binary: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server, killed at the end of the block."""
    server = RedisServer(debian_binary("redis-server", "redis-server"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def haproxy(config: str, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`haproxy -db -f cfg` (in the foreground) with `config`, stopped at the end of the block."""
    binary = debian_binary("haproxy", "haproxy")
    path = directory / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)
