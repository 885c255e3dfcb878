"""gRPC load from locust (headless), driving grpc_locustfile.py against the proxy."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lambdallm.bench.loadgen import PERCENTILES, LoadError, LoadResult
from lambdallm.bench.stats import percentile

LOCUSTFILE = Path(__file__).with_name("grpc_locustfile.py")
TOKEN_VARIABLE = "LAMBDALLM_BENCH_PROXY_TOKEN"
REPO_ROOT = Path(__file__).resolve().parents[2]


def locust_grpc(target: str, request: dict[str, Any], users: int, duration_s: float, token: str) -> LoadResult:
    """Call GenerateText on `target` (host:port) from `users` locust users for `duration_s` seconds, presenting
    the proxy's `token`."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.json"
        command = [
            sys.executable,
            "-m",
            "locust",
            f"--locustfile={LOCUSTFILE}",
            "--headless",
            "--only-summary",
            "--skip-log-setup",
            f"--users={users}",
            f"--spawn-rate={users}",
            f"--run-time={max(1, round(duration_s))}s",
            "--stop-timeout=10",
            f"--host={target}",
            f"--request-json={json.dumps(request)}",
            f"--samples-out={samples}",
        ]
        # tmp as cwd keeps locust from reading a locust.conf or [tool.locust] of wherever the bench runs.
        # The token in the environment, not on the command line that every user of the machine can read.
        env = {
            **os.environ,
            TOKEN_VARIABLE: token,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env, timeout=duration_s + 60)
        if not samples.exists():
            raise LoadError(f"locust exited {result.returncode} without samples: {result.stderr[-2000:]}")
        raw = json.loads(samples.read_text())
    latencies = tuple(raw["latencies_ms"])
    if not latencies:
        raise LoadError(f"locust made no successful call ({raw['failures']} failed: {raw['first']})")
    return LoadResult(
        requests=len(latencies) + raw["failures"],
        ok=len(latencies),
        errors=raw["failures"],
        tokens=0,
        duration_s=raw["duration_s"],
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        mean_ms=statistics.fmean(latencies),
        percentiles_ms={f"{pct:g}": percentile(latencies, pct) for pct in PERCENTILES},
    )
