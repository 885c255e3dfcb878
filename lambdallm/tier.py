"""What every tier process shares: binding its port, telling its supervisor where it listens, dying with it.

Tiers bind what they are given, port 0 included, and announce the ports they got to their supervisor (`up`,
`demo`, tests, the bench), so no port is ever chosen by one process and bound by another.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SUPERVISOR_PID = "LAMBDALLM_SUPERVISOR_PID"
ANNOUNCE_FILE = "LAMBDALLM_ANNOUNCE_FILE"


class TierExited(RuntimeError):
    """The tier process ended before it announced its ports."""


class CannotListen(OSError):
    """A tier's address is taken or not ours to bind; the message names it."""


def bind_tcp(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0 picks a free port), not yet listening; `CannotListen` if taken."""
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without it every
    # keep-alive answer waits out the peer's 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def listen(sock: socket.socket, backlog: int = 1024) -> None:
    """Start listening on a socket from `bind_tcp`; `CannotListen` if another socket listens there already."""
    try:
        sock.listen(backlog)
    except OSError as exc:
        host, port = sock.getsockname()[:2]
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def follow_supervisor() -> None:
    """Under a supervisor, die with it: no tier outlives the chain it was in."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if not supervisor or not sys.platform.startswith("linux"):
        return
    # PR_SET_PDEATHSIG: the kernel sends SIGTERM, which each tier handles as a clean stop, when the parent dies.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def settle(young_threshold: int = 0) -> None:
    """Once a tier has built what it keeps for its lifetime (modules, the spec, its clients), keep the cyclic
    garbage collector from walking all of it again at every full collection: a tenth of the REST tier's CPU
    under load went to collections (gc.freeze; objects made later are collected as before).

    With `young_threshold`, collect the young generation only after that many container objects (net of those
    freed) instead of Python's 700: for a tier whose requests leave no cycles, so that nothing waits longer to be
    freed, and whose requests in flight swing that count past 700 many times a second (bench/README.md)."""
    gc.collect()
    gc.freeze()
    if young_threshold:
        gc.set_threshold(young_threshold)


def announce(ports: dict[str, int]) -> None:
    """Tell the supervisor, if any, the ports this tier has bound (written whole, never half)."""
    path = os.environ.get(ANNOUNCE_FILE)
    if not path:
        return
    partial = f"{path}.partial"
    Path(partial).write_text(json.dumps(ports))
    os.replace(partial, path)


def wait_for_announcement(path: Path, process: subprocess.Popen[str], timeout_s: float) -> dict[str, int]:
    """The ports `process` announced in `path`; `TierExited` if it ends first, `TimeoutError` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
        if process.poll() is not None:
            raise TierExited(f"exited with status {process.returncode} before it listened")
        time.sleep(0.02)
    raise TimeoutError(f"did not listen within {timeout_s:.0f} s")
