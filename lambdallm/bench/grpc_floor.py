"""The floor under the REST tier and the proxy (issue 28): a bare grpc.aio client and server, each in its own
process, exchanging LlmService's messages with nothing else in them, and the CPU each spends per call and per
streamed message. The REST tier is a grpc.aio client and the proxy a grpc.aio server, so what the two tiers spend
beyond these is their own work.

    python -m lambdallm.bench.grpc_floor serve             # prints its port, serves until killed
    python -m lambdallm.bench.grpc_floor measure PORT PID  # prints the figures as JSON (PID: the server's)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import uvloop

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from lambdallm.bench.memory import cpu_s

# Streamed messages go out this far apart: SmolLM2-135M's pace here, about 120 tokens/s (per-message costs
# depend on it: messages that come faster share the wake-ups of the loop and of grpc's poller thread).
MODEL_PACE_S = 0.008
CONCURRENCY = 64  # calls in flight, as the bench's 64 connections keep them
WORDS = ["Tell", "me", "a", "story", "about", "a", "lighthouse", "keeper", "and", "the", "long", "winter", "nights"]


@dataclass(frozen=True)
class FloorRun:
    """How much work one measurement does."""

    calls: int = 4000  # unary calls, CONCURRENCY at once
    streams: int = 8  # streams in a row, one at a time
    tokens: int = 128  # text messages of each stream, MODEL_PACE_S apart


class BareLlmService(llm_pb2_grpc.LlmServiceServicer):
    """Answers as the proxy does (the same messages, sizes and summary) without a backend."""

    async def GenerateText(
        self, request: llm_pb2.LlmQueryRequest, context: grpc.aio.ServicerContext
    ) -> llm_pb2.LlmQueryResponse:
        """A whole answer of `max_tokens` words."""
        text = " ".join(WORDS[i % len(WORDS)] for i in range(request.max_tokens))
        return llm_pb2.LlmQueryResponse(
            text=text,
            model="bare",
            input_tokens=9,
            output_tokens=request.max_tokens,
            finish_reason="length",
            request_id="0123456789abcdef",
        )

    async def GenerateTextStream(
        self, request: llm_pb2.GenerateTextStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[llm_pb2.GenerateTextStreamResponse]:
        """`max_tokens` words, one message each at the model's pace, then the summary."""
        for i in range(request.query.max_tokens):
            await asyncio.sleep(MODEL_PACE_S)
            yield llm_pb2.GenerateTextStreamResponse(text=" " + WORDS[i % len(WORDS)])
        summary = llm_pb2.GenerationSummary(
            model="bare", input_tokens=9, output_tokens=request.query.max_tokens, finish_reason="length"
        )
        yield llm_pb2.GenerateTextStreamResponse(summary=summary)


async def serve() -> None:
    """Serve BareLlmService on a free loopback port, printed on stdout, until killed."""
    server = grpc.aio.server()
    llm_pb2_grpc.add_LlmServiceServicer_to_server(BareLlmService(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def measure(port: int, server_pid: int, run: FloorRun) -> dict[str, dict[str, float]]:
    """CPU ms of this process (the client) and of the server per unary call and per streamed message."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = llm_pb2_grpc.LlmServiceStub(channel)  # type: ignore[no-untyped-call]
        query = llm_pb2.LlmQueryRequest(prompt=" ".join(WORDS[:9]), max_tokens=16, temperature=0.0)
        for _ in range(100):  # first-call costs
            await stub.GenerateText(query)

        async def calls(n: int) -> None:
            for _ in range(n):
                await stub.GenerateText(query)

        share = max(run.calls // CONCURRENCY, 1)
        client, server = time.process_time(), cpu_s(server_pid)
        await asyncio.gather(*(calls(share) for _ in range(CONCURRENCY)))
        unary = _per(client, server, server_pid, share * CONCURRENCY)

        streamed = llm_pb2.GenerateTextStreamRequest(
            query=llm_pb2.LlmQueryRequest(prompt=query.prompt, max_tokens=run.tokens)
        )
        client, server, messages = time.process_time(), cpu_s(server_pid), 0
        for _ in range(run.streams):
            async for message in stub.GenerateTextStream(streamed):
                messages += not message.HasField("summary")
        if messages != run.streams * run.tokens:
            raise RuntimeError(f"{messages} streamed messages, not {run.streams * run.tokens}")
        return {"per_request": unary, "per_message": _per(client, server, server_pid, messages)}


def _per(client_since: float, server_since: float, server_pid: int, count: int) -> dict[str, float]:
    client = 1000 * (time.process_time() - client_since) / count
    server = 1000 * (cpu_s(server_pid) - server_since) / count
    return {"client": client, "server": server, "both": client + server}


def floor_cpu_ms(run: FloorRun) -> dict[str, dict[str, float]]:
    """One measurement: a server and a client process started for it (see the module docstring)."""
    command = [sys.executable, "-m", "lambdallm.bench.grpc_floor"]
    with subprocess.Popen([*command, "serve"], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            sizes = [str(run.calls), str(run.streams), str(run.tokens)]
            measured = subprocess.run(
                [*command, "measure", str(port), str(server.pid), *sizes], capture_output=True, text=True, timeout=600
            )
        finally:
            server.kill()
    if measured.returncode:
        raise RuntimeError(f"the bare grpc.aio client failed: {measured.stderr[-2000:]}")
    figures: dict[str, dict[str, float]] = json.loads(measured.stdout)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lambdallm.bench.grpc_floor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    measuring = commands.add_parser("measure")
    for name in ("port", "server_pid", "calls", "streams", "tokens"):
        measuring.add_argument(name, type=int)
    args = parser.parse_args(argv)
    if args.command == "serve":
        uvloop.run(serve())
        return
    figures: Any = uvloop.run(measure(args.port, args.server_pid, FloorRun(args.calls, args.streams, args.tokens)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
