"""Bench-only servers started beside a chain: the baseline REST tier, the second REST replica, the one-hop gateway."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lambdallm.stack import LISTEN_TIMEOUT_S, Stack, StackError, stop_process
from lambdallm.tier import ANNOUNCE_FILE, TierExited, wait_for_announcement

STOP_GRACE_S = 15.0


@contextmanager
def beside(
    stack: Stack, module: list[str], log_name: str, announced: str, env: dict[str, str]
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`python -m *module` with `stack`'s environment and `env`, its lines in the stack's log as `log_name`: the
    port it announces as `announced`, and its process, once announced; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="lambdallm-beside-") as folder:
        announce = Path(folder) / "ports.json"
        process = subprocess.Popen(
            [sys.executable, "-m", *module],
            env=stack.environment() | env | {ANNOUNCE_FILE: str(announce)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=_relay, args=(stack, process, log_name), daemon=True).start()
        try:
            try:
                port = wait_for_announcement(announce, process, LISTEN_TIMEOUT_S)[announced]
            except (TierExited, TimeoutError) as exc:
                raise StackError(f"the bench's {log_name} server ({' '.join(module)}) {exc}") from exc
            yield port, process
        finally:
            stop_process(process, STOP_GRACE_S)


def _relay(stack: Stack, process: subprocess.Popen[str], log_name: str) -> None:
    out = stack.log or sys.stdout
    assert process.stdout is not None
    for line in process.stdout:
        out.write(f"{log_name:>11} | {line}")
        out.flush()
