"""Issue 18's attack: 200 unauthenticated connections hold the REST tier at once (trickled header blocks,
pipelined Swagger UI downloads never read, stalled bodies) while a client with a key sends 50 queries one after
another: every one is answered 200. Timings are the bench's business, not this test's."""

import asyncio
import contextlib
import socket
import threading

import httpx
import pytest

from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.rest.test_edge import VALID

EACH = 67  # connections of each kind: 201 in all
STATIC = b"GET /ui/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n"
STALLED = b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"


def attack(port: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """Open the attack's connections: (the ones whose header blocks are still trickling, all of them)."""

    def connect(rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        return sock

    trickling = [connect() for _ in range(EACH)]
    for sock in trickling:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    readers = [connect(rcvbuf=4096) for _ in range(EACH)]
    for sock in readers:
        sock.sendall(STATIC * 20)  # about 28 MB of answers, never read
    stalled = [connect() for _ in range(EACH)]
    for sock in stalled:
        sock.sendall(STALLED)
    return trickling, trickling + readers + stalled


def keep_trickling(socks: list[socket.socket], stop: threading.Event) -> None:
    """One more header byte on each connection every half second, until `stop`."""
    while not stop.wait(0.5):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(b"X")


@pytest.fixture
async def attacked(proxy):
    """A REST tier (4 slots) under the attack, with limits long enough that the attack lasts the whole test."""
    limits = {"header_timeout_s": 60, "body_timeout_s": 60, "write_timeout_s": 60}
    async with running_rest(proxy.target, max_in_flight=4, **limits) as url:
        port = int(url.rsplit(":", 1)[1])
        trickling, everyone = await asyncio.to_thread(attack, port)
        stop = threading.Event()
        trickler = threading.Thread(target=keep_trickling, args=(trickling, stop), daemon=True)
        trickler.start()
        try:
            yield url
        finally:
            stop.set()
            trickler.join()
            for sock in everyone:
                sock.close()


async def test_key_holders_are_served_while_200_unauthenticated_connections_attack(attacked):
    async with httpx.AsyncClient(base_url=attacked, timeout=30, headers=AUTHORIZATION) as client:
        statuses = [(await client.post("/query", json=VALID)).status_code for _ in range(50)]

    assert statuses == [200] * 50
