"""Scale-out (issue 24): two REST replicas behind HAProxy (deploy/haproxy/haproxy.cfg, on loopback), two proxies
that each REST replica balances over (round robin), one redis-server; a key's limit holds across the replicas, and
kill -9 of one REST replica and one proxy under load loses only streams that were under way on them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lambdallm.debian_servers import haproxy_config
from lambdallm.rest.keys import Limits, add_key
from lambdallm.tier import ANNOUNCE_FILE, wait_for_announcement
from tests.fakes.backend import FakeBackend, Reply, stream_events
from tests.fakes.servers import free_port, haproxy, redis_server
from tests.fakes.stack import API_KEY, AUTHORIZATION, PROXY_TOKEN, fake_backend, proxy_process_environment
from tests.rest.test_key_limits import fresh_window
from tests.scrape import samples, value

LAMBDALLM = Path(sys.executable).with_name("lambdallm")
PEPPER = "scale-out-pepper-0123456789"
EVENT_TIMEOUT_S = 30  # nothing here may take this long: a request that does has hung


@dataclass
class Tier:
    """A `lambdallm` tier process on a fixed port, so that it comes back where its callers look for it."""

    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[str] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        announce = Path(self.env[ANNOUNCE_FILE])
        announce.unlink(missing_ok=True)
        with self.log.open("a") as log:
            command = [str(LAMBDALLM), self.name]
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log, text=True)
        self.ports = await asyncio.to_thread(wait_for_announcement, announce, self.process, 60)

    def kill(self) -> None:
        """kill -9: no grace, no goodbye to its connections."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class ScaledOut:
    """The running scale-out: HAProxy's URL, the tiers, the fake backend, and team-a's secret (4 requests/min)."""

    url: str
    rest: list[Tier]
    proxies: list[Tier]
    fake: FakeBackend
    secret: str


@pytest.fixture
async def scaled_out(tmp_path: Path) -> AsyncIterator[ScaledOut]:
    secret = add_key(tmp_path / "keys.json", PEPPER.encode(), "team-a", Limits(requests_per_minute=4))
    log = tmp_path / "tiers.log"
    with redis_server() as redis:
        async with fake_backend() as fake:
            proxies = []
            for number in (1, 2):
                env = proxy_process_environment(fake.url, tmp_path / f"proxy-{number}.json")
                proxies.append(Tier("proxy", env | {"LAMBDALLM_PROXY_PORT": str(free_port())}, log))
            target = "ipv4:" + ",".join(f"127.0.0.1:{p.env['LAMBDALLM_PROXY_PORT']}" for p in proxies)
            rest = [
                Tier(
                    "rest",
                    os.environ
                    | {
                        "LAMBDALLM_REST_PORT": str(free_port()),
                        "LAMBDALLM_REST_GRPC_TARGET": target,
                        "LAMBDALLM_REST_GRPC_TOKEN": PROXY_TOKEN,
                        "LAMBDALLM_REST_API_KEYS": API_KEY,
                        "LAMBDALLM_REST_KEYS_FILE": str(tmp_path / "keys.json"),
                        "LAMBDALLM_REST_KEYS_PEPPER": PEPPER,
                        "LAMBDALLM_REST_REDIS_URL": redis.url,
                        ANNOUNCE_FILE: str(tmp_path / f"rest-{number}.json"),
                    },
                    log,
                )
                for number in (1, 2)
            ]
            port = free_port()
            try:
                await asyncio.gather(*(tier.start() for tier in (*proxies, *rest)))
                config = haproxy_config(port, [int(r.env["LAMBDALLM_REST_PORT"]) for r in rest])
                with haproxy(config, tmp_path):
                    url = f"http://127.0.0.1:{port}"
                    await wait_until_ready(url)
                    yield ScaledOut(url, rest, proxies, fake, secret)
            except BaseException:
                print(log.read_text()[-20000:])
                raise
            finally:
                for tier in (*rest, *proxies):
                    tier.stop()


async def wait_until_ready(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(200):
            try:
                if (await client.get("/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url}/ready never answered 200")


async def served_by(tier: Tier, metric: str, **labels: str) -> float:
    """A counter of a tier's own /metrics (its REST port, or a proxy's metrics port)."""
    port = tier.ports.get("rest") or tier.ports["proxy_metrics"]
    async with httpx.AsyncClient(timeout=5) as client:
        return value(samples((await client.get(f"http://127.0.0.1:{port}/metrics")).text), metric, **labels)


async def test_a_keys_limit_holds_across_both_rest_replicas(scaled_out: ScaledOut) -> None:
    headers = {"Authorization": f"Bearer {scaled_out.secret}"}
    await fresh_window()
    async with httpx.AsyncClient(base_url=scaled_out.url, timeout=10, headers=headers) as client:
        statuses = [(await client.post("/query", json={"prompt": "Hi", "max_tokens": 5})).status_code for _ in range(8)]
    served = [
        await served_by(r, "lambdallm_rest_key_requests_total", key="team-a", model="fake-model")
        for r in scaled_out.rest
    ]

    assert sorted(statuses) == [200] * 4 + [429] * 4  # 4 in total, not 4 per replica
    assert all(count >= 1 for count in served) and sum(served) == 4  # and both replicas served


async def read_stream(client: httpx.AsyncClient, number: int, first_token: asyncio.Event) -> str:
    """One streamed /query: "done", or how it failed; `first_token` is set once its first text event is in."""
    events: list[str] = []
    body = {"prompt": f"stream {number}", "max_tokens": 5}
    try:
        async with client.stream("POST", "/query", json=body, headers={"Accept": "text/event-stream"}) as response:
            if response.status_code != 200:
                return f"status {response.status_code} before any token"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    events.append(line.removeprefix("event:").strip())
                    if events == ["text"]:
                        first_token.set()
    except httpx.HTTPError as exc:
        return f"cut after {events} ({type(exc).__name__})"
    return "done" if events[-1:] == ["done"] else f"failed after {events}"


async def test_losing_a_rest_replica_and_a_proxy_under_load_loses_only_what_they_were_streaming(
    scaled_out: ScaledOut,
) -> None:
    fake = scaled_out.fake
    async with httpx.AsyncClient(base_url=scaled_out.url, timeout=EVENT_TIMEOUT_S, headers=AUTHORIZATION) as client:
        # Whole answers under way at the backend, no token yet: on a killed tier they must be retried elsewhere.
        held = asyncio.Event()
        fake.replies.extend(Reply(hold=held) for _ in range(4))
        body = {"prompt": "whole", "max_tokens": 5}
        wholes = [asyncio.create_task(client.post("/query", json=body)) for _ in range(4)]
        await fake.wait_for_queries(4)
        # Streams that have sent their first token and wait for the rest.
        gate = asyncio.Event()
        fake.replies.extend(Reply(events=stream_events(f"stream {n}"), gates={1: gate}) for n in range(6))
        started = [asyncio.Event() for _ in range(6)]
        streams = [asyncio.create_task(read_stream(client, n, started[n])) for n in range(6)]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), EVENT_TIMEOUT_S)

        scaled_out.rest[0].kill()
        scaled_out.proxies[0].kill()
        during = [asyncio.create_task(client.post("/query", json=body)) for _ in range(6)]
        held.set()
        gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*wholes, *during), EVENT_TIMEOUT_S)
        outcomes = await asyncio.wait_for(asyncio.gather(*streams), EVENT_TIMEOUT_S)

        assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
        failed = [outcome for outcome in outcomes if outcome != "done"]
        assert 1 <= len(failed) < len(outcomes), outcomes  # some streams were on the killed tiers, not all
        assert all("text" in outcome for outcome in failed), failed  # each failed after its first token

        # Both come back on their ports and take load again.
        await asyncio.gather(scaled_out.rest[0].start(), scaled_out.proxies[0].start())
        for _ in range(100):
            assert (await client.post("/query", json=body)).status_code == 200
            rest_back = await served_by(scaled_out.rest[0], "lambdallm_rest_tokens_total", type="output")
            proxy_back = await served_by(
                scaled_out.proxies[0], "lambdallm_proxy_rpcs_total", method="llm.v1.LlmService/GenerateText", code="OK"
            )
            if rest_back and proxy_back:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the restarted REST replica ({rest_back}) or proxy ({proxy_back}) took no load")


async def test_a_client_that_hangs_up_through_haproxy_stops_its_work_at_the_backend(scaled_out: ScaledOut) -> None:
    fake = scaled_out.fake
    fake.replies.append(Reply(hold=asyncio.Event()))  # a whole answer that never comes unless it is cancelled
    host, port = scaled_out.url.removeprefix("http://").split(":")
    body = b'{"prompt": "whole", "max_tokens": 5}'
    request = (
        f"POST /query HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTHORIZATION['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    await fake.wait_for_queries(1)

    writer.close()  # the client leaves before its answer
    await writer.wait_closed()

    # HAProxy closes the replica's connection, the replica cancels its gRPC call, the proxy its backend request.
    await asyncio.wait_for(fake.cancelled.wait(), EVENT_TIMEOUT_S)
