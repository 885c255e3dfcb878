"""`lambdallm bench`: bring the chain up on the local cloud, measure it against its references, write the report."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lambdallm.bench.plan import FULL, QUICK, Plan
from lambdallm.stack import Ports, Stack, StackError

RESULTS_DIR = Path("bench/results")
QUICK_DIR = RESULTS_DIR / "quick"  # a quick run never overwrites the real figures


def run(quick: bool = False, out_dir: Path | None = None, plan: Plan | None = None) -> int:
    """Measure everything, write latest.{json,md,png} into `out_dir`, print the table; the exit status."""
    from lambdallm.bench.tools import ToolError, ensure_tools

    try:
        ensure_tools()
    except ToolError as exc:
        print(f"lambdallm bench: {exc}", file=sys.stderr)
        return 1
    from tqdm import tqdm

    from lambdallm.bench import report

    plan = plan or (QUICK if quick else FULL)
    out_dir = out_dir or (QUICK_DIR if quick else RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "stack.log"
    started = datetime.datetime.now(datetime.UTC)
    with log_path.open("w") as log, tqdm(total=plan.steps, unit="step", file=sys.stderr, dynamic_ncols=True) as bar:

        def step(what: str) -> None:
            bar.set_description_str(what)
            bar.update(1)

        try:
            results = measure(plan, log, step)
        except (StackError, RuntimeError, OSError) as exc:
            bar.close()
            print(f"lambdallm bench: {exc}; tier logs in {log_path}", file=sys.stderr)
            return 1
        bar.update(bar.total - bar.n)
    results["meta"] |= {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
        "quick": quick,
    }
    paths = report.write(results, out_dir)
    print(report.markdown(results))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def measure(plan: Plan, log: IO[str], step: Callable[[str], None]) -> dict[str, Any]:
    """Both stacks in turn: the instant one for the plumbing, the real model's for generation and memory."""
    from lambdallm.bench.generation import measure_generation
    from lambdallm.bench.memory import rss_mb
    from lambdallm.bench.model import MODEL
    from lambdallm.bench.openai_api import measure_openai
    from lambdallm.bench.plumbing import measure_plumbing
    from lambdallm.bench.report import build
    from lambdallm.bench.scale_out import measure_scale_out
    from lambdallm.bench.tracing_cost import measure_tracing

    env = {"LAMBDALLM_LOCAL_CLOUD_QUEUE_SIZE": str(plan.queue_size)}
    load_at_start = os.getloadavg()  # the machine may be shared: say how busy it was
    step("starting the chain (instant model)")
    # The instant model makes a whole answer at once: stream_batch_ms 0 streams it in many events (the default, in
    # two), so that the abandoned streams' clients leave in the middle of theirs (issue 26). Its other figures are
    # whole answers.
    instant_env = env | {"LAMBDALLM_PROXY_STREAM_BATCH_MS": "0"}
    with Stack(Ports.any(), engine="instant", log=log, extra_env=instant_env) as stack:
        plumbing = measure_plumbing(stack, plan, step)
        openai = measure_openai(stack, plan, step)
        tracing = measure_tracing(stack, plan, log, step)
        rss_instant = _rss(stack, rss_mb)  # before the scale-out's runs, which add HAProxy's in front
        scale_out = measure_scale_out(stack, plan, step)
    step(f"starting the chain ({MODEL['name']})")
    with Stack(Ports.any(), engine="llama", log=log, extra_env=env) as stack:
        generation = measure_generation(stack, plan, log, step)
        step("reading memory")
        rss = _rss(stack, rss_mb)
    meta = {
        "model": MODEL,
        "repetitions": plan.repetitions,
        "plan": plan.__dict__,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # 1, 5 and 15-minute load averages, before the run and at its end (the bench's own work included)
            "load_average": {
                "start": [round(x, 2) for x in load_at_start],
                "end": [round(x, 2) for x in os.getloadavg()],
            },
        },
        "load_generators": {"http": "wrk (Debian) + lambdallm/bench/post.lua", "grpc": "locust (gevent gRPC user)"},
    }
    return build(plumbing, generation, rss, rss_instant, meta, openai, tracing, scale_out)


def _rss(stack: Stack, rss_mb: Callable[[int], float]) -> dict[str, float]:
    names = {"rest": "rest", "proxy": "proxy", "cloud": "local-cloud"}
    return {key: rss_mb(stack.processes[tier].pid) for key, tier in names.items()}
