"""`lambdallm proxy` as a process: SIGTERM lets the in-flight call finish, then it exits 0."""

import asyncio
import json
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.fakes.backend import Reply
from tests.fakes.stack import fake_backend, proxy_channel, proxy_process_environment

LAMBDALLM = Path(sys.executable).with_name("lambdallm")


async def announced_port(path, process):
    while process.returncode is None:
        if path.exists():
            return json.loads(path.read_text())["grpc"]
        await asyncio.sleep(0.02)
    raise AssertionError("proxy exited before it listened")


async def wait_serving(channel, process):
    health = health_pb2_grpc.HealthStub(channel)
    while process.returncode is None:
        try:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
    raise AssertionError("proxy exited before serving")


async def test_sigterm_finishes_in_flight_call(tmp_path):
    async with fake_backend() as fake:
        env = proxy_process_environment(fake.url, tmp_path / "ports.json")
        process = await asyncio.create_subprocess_exec(LAMBDALLM, "proxy", env=env, stderr=asyncio.subprocess.PIPE)
        try:
            port = await announced_port(tmp_path / "ports.json", process)
            async with proxy_channel(f"127.0.0.1:{port}") as channel:
                await wait_serving(channel, process)
                fake.replies.append(Reply(delay_s=0.5))
                call = llm_pb2_grpc.LlmServiceStub(channel).GenerateText(
                    llm_pb2.LlmQueryRequest(prompt="Hi", max_tokens=3), timeout=10
                )
                while len(fake.requests) < 2:  # the health probe, then the call
                    await asyncio.sleep(0.01)
                process.send_signal(signal.SIGTERM)
                reply = await call
                assert reply.text == "echo: Hi"
            _, err = await asyncio.wait_for(process.communicate(), 15)
            assert process.returncode == 0
            assert b'"msg": "proxy stopped"' in err
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
