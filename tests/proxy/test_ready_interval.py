"""Readiness costs the backend at most one probe per ready_interval_s, however often health is checked: checks in
between take the last answer, and checks during a probe share it."""

import asyncio
import time

from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.fakes.backend import Reply
from tests.fakes.stack import proxy_channel, running_proxy

SERVING = health_pb2.HealthCheckResponse.SERVING
CHECK = health_pb2.HealthCheckRequest(service="llm.v1.LlmService")


def probes(fake):
    return sum(1 for _, body in fake.requests if body == {})


async def test_a_thousand_checks_make_one_probe_per_interval_plus_one(fake):
    interval_s = 0.05
    async with running_proxy(fake, ready_interval_s=interval_s) as proxy, proxy_channel(proxy.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        started = time.monotonic()
        statuses = []
        for _ in range(10):
            replies = await asyncio.gather(*(health.Check(CHECK, timeout=10) for _ in range(100)))
            statuses += [reply.status for reply in replies]
        elapsed_s = time.monotonic() - started

    assert statuses == [SERVING] * 1000
    assert 1 <= probes(fake) <= elapsed_s // interval_s + 1


async def test_checks_during_a_probe_share_it(fake):
    probing = asyncio.Event()  # the probe's answer waits for the test, not for a fixed delay
    fake.probe = Reply(status=400, body={"status": 400}, hold=probing)
    settings = {"ready_interval_s": 0.0, "probe_timeout_s": 20.0}  # the probe outlasts the test's wait
    async with running_proxy(fake, **settings) as proxy, proxy_channel(proxy.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        checks = asyncio.gather(*(health.Check(CHECK, timeout=30) for _ in range(50)))
        await fake.wait_for_probes(1)
        # 50 calls on loopback reach the proxy within milliseconds; a second, however slow the machine, is
        # generous (with a 0.3 s answer this test once saw a second probe on a loaded machine).
        await asyncio.sleep(2.0)
        probing.set()
        replies = await checks

    assert [reply.status for reply in replies] == [SERVING] * 50
    assert probes(fake) == 1


async def test_a_change_is_seen_once_the_interval_has_passed(fake):
    async with running_proxy(fake, ready_interval_s=0.2) as proxy, proxy_channel(proxy.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(CHECK, timeout=10)).status == SERVING
        fake.probe = Reply(status=503, body={"status": 503})
        assert (await health.Check(CHECK, timeout=10)).status == SERVING  # the last answer, within the interval
        while (await health.Check(CHECK, timeout=10)).status == SERVING:
            await asyncio.sleep(0.05)
    assert probes(fake) >= 2
