"""Real servers from Debian's packages (redis-server, haproxy) as child processes on free loopback ports, installed
with apt-get when missing (lambdallm/debian_servers.py); a test that needs one is skipped, saying why, only where it
cannot be installed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdallm import debian_servers
from lambdallm.debian_servers import MissingServer, free_port, wait_for_port

__all__ = ["debian_binary", "free_port", "haproxy", "redis_server", "wait_for_port"]


def debian_binary(name: str, package: str) -> str:
    """The path of `name` (lambdallm/debian_servers.py installs Debian's `package` if it is missing); else skip."""
    try:
        return debian_servers.debian_binary(name, package)
    except MissingServer as exc:
        pytest.skip(str(exc))


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
    """HAProxy with `config` (lambdallm/debian_servers.py), stopped at the end of the block; skip where it cannot
    be installed."""
    debian_binary("haproxy", "haproxy")
    with debian_servers.haproxy(config, directory) as process:
        yield process
