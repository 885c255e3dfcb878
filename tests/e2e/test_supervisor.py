"""No tier outlives its supervisor, even one killed without a chance to stop them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.e2e]

SUPERVISOR = """
import io, json, os, signal, sys
from lambdallm.stack import Ports, Stack
stack = Stack(Ports.any(), engine="instant", log=io.StringIO())
stack.start()
stack.wait_ready()
print(json.dumps([p.pid for p in stack.processes.values()]), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_the_tiers_stop_when_their_supervisor_is_killed() -> None:
    result = subprocess.run([sys.executable, "-c", SUPERVISOR], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    pids = json.loads(result.stdout)
    assert len(pids) == 3

    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)

    survivors = [pid for pid in pids if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
