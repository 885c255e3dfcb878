"""Locust users that call llm.v1.LlmService/GenerateText; run by grpc_load.py, not imported by the bench."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, events, task

from generated.llm.v1 import llm_pb2, llm_pb2_grpc

grpc_gevent.init_gevent()  # grpc's blocking calls must yield to gevent, or one user blocks all the others

SAMPLES: list[float] = []
FAILURES: list[str] = []
WINDOW: dict[str, float] = {}


def _arguments(parser: Any) -> None:
    parser.add_argument("--request-json", type=str, default="{}", help="the LlmQueryRequest as JSON")
    parser.add_argument("--samples-out", type=str, default="", help="where to write every latency (ms)")


def _record(response_time: float, exception: BaseException | None, **_: Any) -> None:
    # Locust's own stats round to whole milliseconds; the bench needs the exact samples.
    if exception is None:
        SAMPLES.append(response_time)
    else:
        FAILURES.append(repr(exception))


def _started(**_: Any) -> None:
    WINDOW["start"] = time.perf_counter()


def _stopped(environment: Any, **_: Any) -> None:
    WINDOW["stop"] = time.perf_counter()
    if path := environment.parsed_options.samples_out:
        duration = WINDOW["stop"] - WINDOW.get("start", WINDOW["stop"])
        report = {"latencies_ms": SAMPLES, "failures": len(FAILURES), "duration_s": duration, "first": FAILURES[:3]}
        Path(path).write_text(json.dumps(report))


# Plain calls rather than decorators, so that only these lines need to excuse locust's untyped add_listener.
events.init_command_line_parser.add_listener(_arguments)  # type: ignore[no-untyped-call]
events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_stopped)  # type: ignore[no-untyped-call]


class GenerateTextUser(User):
    """One client with one channel, calling GenerateText back to back."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(self.host)
        self.stub = llm_pb2_grpc.LlmServiceStub(self.channel)  # type: ignore[no-untyped-call]
        options = self.environment.parsed_options
        self.request = llm_pb2.LlmQueryRequest(**json.loads(options.request_json))
        self.metadata = (("authorization", f"Bearer {os.environ.get('LAMBDALLM_BENCH_PROXY_TOKEN', '')}"),)

    def on_stop(self) -> None:
        self.channel.close()

    @task
    def generate_text(self) -> None:
        start = time.perf_counter()
        exception: BaseException | None = None
        length = 0
        try:
            answer = self.stub.GenerateText(self.request, timeout=60, metadata=self.metadata)
            length = answer.output_tokens
        except grpc.RpcError as exc:
            exception = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name="GenerateText",
            response_time=(time.perf_counter() - start) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )
