"""Faults under load, with real processes on loopback: a proxy killed and restarted, each tier stopped with
SIGTERM, a backend too slow for a stream's deadline. Every wait is bounded."""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from lambdallm.stack import Ports, Stack
from tests.e2e.load import BODY, Load, Outcome, fake_backend_thread, send
from tests.fakes.backend import FakeBackend, Reply

pytestmark = [pytest.mark.e2e]
DEADLINE_S = 3.0
PROBLEM = "application/problem+json"


def _started(stack: Stack) -> Stack:
    try:
        stack.start()
        stack.wait_ready(timeout=60)
    except Exception:
        stack.stop()
        print(stack.log.getvalue() if isinstance(stack.log, io.StringIO) else "")
        raise
    return stack


@pytest.fixture
def instant_stack() -> Iterator[Stack]:
    """The whole chain on the instant model, with a REST deadline of DEADLINE_S."""
    stack = Stack(Ports.any(), engine="instant", log=io.StringIO(), extra_env={"LAMBDALLM_REST_DEADLINE_S": "3"})
    yield _started(stack)
    stack.stop()


@pytest.fixture
def slow_backend() -> Iterator[FakeBackend]:
    with fake_backend_thread() as fake:
        yield fake


@pytest.fixture
def front_tiers(slow_backend: FakeBackend) -> Iterator[Stack]:
    """The proxy and the REST tier as processes, in front of the fake backend."""
    env = {
        "LAMBDALLM_PROXY_BACKEND_URL": slow_backend.url,
        "LAMBDALLM_REST_DEADLINE_S": "3",
        "LAMBDALLM_REST_STREAM_DEADLINE_S": "3",
    }
    stack = Stack(Ports.any(), log=io.StringIO(), tiers=("proxy", "rest"), extra_env=env)
    yield _started(stack)
    stack.stop()


def test_a_killed_proxy_is_503_at_once_and_its_restart_serves_within_4_s(instant_stack: Stack) -> None:
    proxy = instant_stack.processes["proxy"]
    with Load(instant_stack.rest_url, 8, DEADLINE_S + 10, instant_stack.auth_headers) as load:
        load.wait_for(lambda seen: sum(o.status == 200 for o in seen) >= 20)
        killed = time.monotonic()
        proxy.send_signal(signal.SIGKILL)
        proxy.wait(10)
        # Down long enough for gRPC's reconnect backoff to grow past 6 s, were it not capped (1 s, times 1.6 per
        # attempt, +-20%: an attempt falls between about 24 and 28 s): a restart is then seen 7 s late or more,
        # so a bound of 4 s tells a capped backoff (at most 1 s) apart with seconds to spare on a busy machine.
        load.wait_for(lambda seen: sum(o.started > killed + 16 and o.status == 503 for o in seen) >= 20, timeout_s=40)
        instant_stack.restart("proxy")
        restarted = time.monotonic()
        load.wait_for(lambda seen: any(o.started > restarted and o.status == 200 for o in seen), timeout_s=10)
        back = min(o.ended for o in load.outcomes if o.started > restarted and o.status == 200)
        load.wait_for(lambda seen: sum(o.started > back and o.status == 200 for o in seen) >= 20)

    outcomes = list(load.outcomes)
    during = [o for o in outcomes if o.ended > killed and o.started < back]
    assert {o.status for o in outcomes} <= {200, 503}, _odd(outcomes, {200, 503})
    assert all(o.media_type == PROBLEM for o in during if o.status == 503)
    # Nobody waited for the deadline of a dead proxy: that would be a 504, which the statuses above exclude.
    assert back - restarted <= 4.0
    assert all(o.status == 200 for o in outcomes if o.started > back)


@pytest.mark.parametrize("tier", ["rest", "proxy"])
def test_sigterm_lets_in_flight_requests_finish_refuses_new_ones_and_exits_0(
    front_tiers: Stack, slow_backend: FakeBackend, tier: str
) -> None:
    slow_backend.replies.extend(Reply(delay_s=1.0) for _ in range(4))
    queries = lambda: sum(1 for _, body in slow_backend.requests if body != {})  # noqa: E731 (not readiness probes)
    seen_before = queries()
    in_flight: list[Outcome] = []
    clients = [threading.Thread(target=lambda: in_flight.append(_post(front_tiers))) for _ in range(4)]
    for client in clients:
        client.start()
    _until(lambda: queries() - seen_before >= 4)  # all four are at the backend

    front_tiers.processes[tier].send_signal(signal.SIGTERM)
    accepted = _accepted_until_refused(front_tiers, tier)
    for client in clients:
        client.join(DEADLINE_S + 5)

    assert [o.status for o in in_flight] == [200] * 4, in_flight
    # A refused request did no work: only the four and those answered in full reached the backend.
    assert queries() - seen_before == 4 + accepted
    assert front_tiers.processes[tier].wait(15) == 0


def _accepted_until_refused(stack: Stack, tier: str) -> int:
    """New requests, one after another, until `tier` refuses one; how many were answered in full before.

    A stopping REST tier refuses at its port, or (a connection it accepted just before closing its port, whose
    request it had not started to read) closes the connection without an answer, as uvicorn does with idle
    connections: with a FIN, or with a reset (ReadError) when the request's bytes were still unread in the socket,
    as the kernel does for a socket closed with data unread (about one run in ten). Either way the request never
    reached the backend, which the caller's count of backend queries holds it to. A stopping proxy makes the REST
    tier answer 503.
    """
    accepted, deadline = 0, time.monotonic() + 5
    while time.monotonic() < deadline:
        outcome = _post(stack, timeout_s=5)
        if tier == "rest" and outcome.error in ("ConnectError", "RemoteProtocolError", "ReadError"):
            return accepted
        if tier == "proxy" and outcome.status == 503:
            assert outcome.media_type == PROBLEM
            return accepted
        assert outcome.status == 200, outcome  # accepted before the signal took effect: answered in full
        accepted += 1
        time.sleep(0.02)
    raise AssertionError(f"{tier} still took new requests 5 s after SIGTERM")


@pytest.mark.model
def test_sigterm_to_the_local_cloud_finishes_generations_in_flight_and_exits_0() -> None:
    stack = _started(Stack(Ports.any(), log=io.StringIO()))
    try:
        body = {"prompt": "Count: one, two, three,", "max_tokens": 6, "temperature": 0}
        in_flight: list[Outcome] = []
        # Generous client timeouts: on a busy machine three queued generations can take many seconds.
        post = lambda: in_flight.append(_post(stack, body, timeout_s=90))  # noqa: E731
        clients = [threading.Thread(target=post) for _ in range(3)]
        for client in clients:
            client.start()
        _until(lambda: stack.log is not None and stack.log.getvalue().count("invoking model") >= 3)

        stack.processes["local-cloud"].send_signal(signal.SIGTERM)
        for client in clients:
            client.join(100)
        after = _post(stack, body)

        assert [o.status for o in in_flight] == [200] * 3, in_flight
        assert after.status == 503 and after.media_type == PROBLEM
        assert stack.processes["local-cloud"].wait(15) == 0
    finally:
        stack.stop()


def test_a_backend_too_slow_for_a_stream_is_a_504_at_the_deadline(
    front_tiers: Stack, slow_backend: FakeBackend
) -> None:
    slow_backend.replies.append(Reply(delay_s=120))  # far past the deadline and the client's timeout
    started = time.monotonic()

    answer = httpx.post(
        f"{front_tiers.rest_url}/query",
        json=BODY,
        headers=front_tiers.auth_headers | {"Accept": "text/event-stream"},
        timeout=60,
    )

    # An answer at all means the deadline ended the wait: the backend would have taken 120 s.
    assert answer.status_code == 504
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["status"] == 504
    assert time.monotonic() - started >= DEADLINE_S  # not before it either


def _post(stack: Stack, body: dict[str, object] = BODY, timeout_s: float = DEADLINE_S + 10) -> Outcome:
    with httpx.Client(base_url=stack.rest_url, timeout=timeout_s, headers=stack.auth_headers) as client:
        return send(client, body)


def _until(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.01)


def _odd(outcomes: list[Outcome], expected: set[int]) -> list[Outcome]:
    return [o for o in outcomes if o.status not in expected][:5]
