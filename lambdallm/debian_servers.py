"""Servers from Debian's packages that run beside the tiers on loopback (HAProxy, redis-server): found on PATH or
installed with apt-get (as root), and HAProxy run with deploy/haproxy/haproxy.cfg rewritten for loopback ports. The
scale-out test and the bench's scale-out section both start HAProxy through here."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HAPROXY_CFG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
_SERVER_LINE = re.compile(r"^([ \t]*)server rest-1 rest-1:8080( .*)$", re.MULTILINE)
_OTHER_SERVERS = re.compile(r"^[ \t]*server rest-(?!1 ).*\n?", re.MULTILINE)
_apt_updated = False


class MissingServer(RuntimeError):
    """A server's binary is not installed and cannot be installed here."""


class ServerFailed(RuntimeError):
    """A server refused its configuration or exited before it listened."""


def debian_binary(name: str, package: str) -> str:
    """The path of `name`, installing Debian's `package` with apt-get first if it is missing (as root);
    `MissingServer`, saying why, where it cannot be installed."""
    global _apt_updated
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise MissingServer(
            f"{name} is missing and cannot be installed here (needs apt-get as root: apt-get install {package})"
        )
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _apt(["update", "-qq"], environment)
        _apt_updated = True
    result = _apt(["install", "-y", "-qq", package], environment)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise MissingServer(f"{name} is missing and apt-get install {package} failed: {result.stderr.strip()[-300:]}")
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
    """Poll until something accepts on `port`; `ServerFailed` if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"{process.args!r} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def haproxy_config(port: int, rest_ports: list[int], template: str | None = None) -> str:
    """deploy/haproxy/haproxy.cfg listening on loopback `port`, balancing over one server line per REST replica
    on loopback `rest_ports` (each with the shipped file's check settings)."""
    text = HAPROXY_CFG.read_text() if template is None else template
    text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
    text = _OTHER_SERVERS.sub("", text)
    match = _SERVER_LINE.search(text)
    if match is None or not rest_ports:
        raise ValueError("the HAProxy config has no `server rest-1 rest-1:8080` line, or no REST port was given")
    indent, options = match.groups()
    lines = [f"{indent}server rest-{n} 127.0.0.1:{p}{options}" for n, p in enumerate(rest_ports, 1)]
    return text[: match.start()] + "\n".join(lines) + text[match.end() :]


@contextmanager
def haproxy(config: str, directory: Path, port: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`haproxy -db -f cfg` (in the foreground) with `config` written into `directory`, checked first, listening
    on `port` (when given) before the block runs; stopped at its end. Its request log goes nowhere."""
    binary = debian_binary("haproxy", "haproxy")
    path = directory / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise ServerFailed(f"haproxy -c refused {path}: {checked.stdout}{checked.stderr}")
    with (directory / "haproxy.err").open("wb") as errors:
        process = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=errors)
    try:
        if port is not None:
            try:
                wait_for_port(port, process)
            except (ServerFailed, TimeoutError) as exc:
                raise ServerFailed(f"{exc}: {(directory / 'haproxy.err').read_text()[-1000:]}") from exc
        yield process
    finally:
        process.terminate()
        process.wait(10)
