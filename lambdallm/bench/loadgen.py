"""HTTP load from wrk: one JSON POST body at a fixed concurrency for a fixed time, summarised by post.lua."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("post.lua")
MARKER = "WRK_JSON "
THREAD_DONE = "WRK_THREAD_DONE"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)  # as post.lua prints them


class LoadError(RuntimeError):
    """The load generator failed or printed no summary."""


@dataclass(frozen=True)
class LoadResult:
    """What one load run saw: counts, latency percentiles (ms) and generated tokens."""

    requests: int
    ok: int
    errors: int
    tokens: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    percentiles_ms: dict[str, float] = field(default_factory=dict)  # "1".."99.9" -> ms, for the plot
    # What the errors were: each non-2xx status ("503") and socket error ("connect", "read", "write", "timeout")
    # with its count; only kinds that occurred.
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Successful requests per second of the run."""
        return self.ok / self.duration_s

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of wall time (aggregate over all connections)."""
        return self.tokens / self.duration_s

    @property
    def tokens_per_s_per_request(self) -> float:
        """Tokens per second of one request's own latency (the rate a single client sees)."""
        return (self.tokens / self.ok) / (self.mean_ms / 1000) if self.ok else 0.0


def wrk(
    url: str,
    body: dict[str, Any],
    connections: int,
    duration_s: float,
    timeout_s: float = 30.0,
    requests_per_connection: int | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST `body` (with `headers`) to `url` from `connections` keep-alive connections for `duration_s` seconds.

    With `requests_per_connection`, send exactly `connections * requests_per_connection` requests and stop when
    all are answered (`duration_s` is then only a cap).
    """
    threads = 2 if connections % 2 == 0 else 1  # two cores, shared with the servers; budgets split evenly
    budget = [] if requests_per_connection is None else [str(requests_per_connection * connections // threads)]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body_file:
        json.dump(body, body_file)
        body_file.flush()
        command = [
            "wrk",
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            f"--script={SCRIPT}",
            *(f"--header={name}: {value}" for name, value in (headers or {}).items()),
            url,
            "--",
            body_file.name,
            *budget,
        ]
        stdout, stderr, returncode = _run(command, threads if budget else 0, duration_s + timeout_s + 30)
    return parse(stdout, command=" ".join(command), stderr=stderr, returncode=returncode)


def _run(command: list[str], threads_to_finish: int, cap_s: float) -> tuple[str, str, int]:
    """Run wrk; once `threads_to_finish` threads say their batch is answered, interrupt it (it then reports)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(cap_s, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        lines, finished = [], 0
        for line in process.stdout:
            lines.append(line)
            finished += line.startswith(THREAD_DONE)
            if threads_to_finish and finished == threads_to_finish:
                process.send_signal(signal.SIGINT)  # wrk's handler ends its sleep, joins threads, runs done()
        stderr = process.stderr.read() if process.stderr else ""
        return "".join(lines), stderr, process.wait()
    finally:
        timer.cancel()


def parse(stdout: str, command: str = "wrk", stderr: str = "", returncode: int = 0) -> LoadResult:
    """The LoadResult in wrk's output, from the summary line post.lua's done() prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if returncode != 0 or line is None:
        raise LoadError(f"{command} exited {returncode} without a summary: {stdout[-1000:]} {stderr[-1000:]}")
    raw = json.loads(line[len(MARKER) :])
    return LoadResult(
        requests=raw["requests"],
        ok=raw["ok"],
        errors=raw["non_2xx"] + raw["socket_errors"] + raw["timeouts"],
        tokens=raw["tokens"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        percentiles_ms={pct: us / 1000 for pct, us in raw["percentiles_us"].items()},
        error_kinds=raw["error_kinds"],
    )
