"""Admission at the REST tier's edge (issue 18, finding 1): only authenticated generation work takes one of the
max_in_flight slots, and only once its body is in; no body is read before the key is checked."""

import asyncio
import json
import logging
import socket

import httpx
import pytest

from lambdallm.rest.app import SPEC
from lambdallm.rest.body_limit import largest_request_bytes
from tests.fakes.raw_http import parse_answer, read_until_closed
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.rest.test_edge import VALID, hold

LIMIT = 2
BODY_LIMIT = largest_request_bytes(SPEC)  # the default max_body_bytes


@pytest.fixture
async def full(proxy):
    """A REST tier taking LIMIT requests at once, with LIMIT keyed queries held in flight by the fake backend."""
    async with (
        running_rest(proxy.target, max_in_flight=LIMIT) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        gate, calls = await hold(client, proxy.fake, LIMIT)
        yield client
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * LIMIT


@pytest.fixture
async def limited(proxy):
    async with (
        running_rest(proxy.target, max_in_flight=1) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        yield client


def port_of(client: httpx.AsyncClient) -> int:
    return client.base_url.port or 80


def exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send `head` and the start of a body that never ends, and read what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        return read_until_closed(sock, timeout=10)


async def test_documentation_static_files_probes_and_404s_never_take_a_slot(full):
    answers = [await full.get(path) for path in ("/ui/", "/openapi.json", "/no/such/path", "/health", "/ready")]

    assert [a.status_code for a in answers] == [200, 200, 404, 200, 200]
    assert (await full.post("/query", json=VALID)).status_code == 429  # the keyed queries do hold every slot


async def test_requests_without_a_valid_key_never_take_a_slot(full):
    missing = await full.post("/query", json=VALID, headers={"Authorization": ""})
    wrong = await full.post("/query", json=VALID, headers={"Authorization": "Bearer not-a-key"})

    assert (missing.status_code, wrong.status_code) == (401, 401)


@pytest.mark.parametrize("path", ["/query", "/no/such/path"])
async def test_a_chunked_body_without_a_key_or_to_an_unknown_path_is_not_read(limited, path):
    # The chunked body never ends: the answer comes from the head alone, or not at all (socket.timeout).
    key = b"" if path == "/query" else b"Authorization: Bearer " + AUTHORIZATION["Authorization"][7:].encode() + b"\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n".encode()
        + key
        + b"\r\n"
    )

    answer = parse_answer(await asyncio.to_thread(exchange, port_of(limited), head, b'10\r\n{"prompt": "Hi'))

    assert answer.status == (401 if path == "/query" else 404)
    assert answer.headers["connection"] == "close"


async def test_a_stalled_body_with_a_key_holds_no_slot(limited):
    port = port_of(limited)
    head = (
        f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
        f"Authorization: {AUTHORIZATION['Authorization']}\r\n\r\n"
    ).encode()
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        stalled.sendall(head + b'{"prompt": "Hi')
        assert (await limited.get("/health")).status_code == 200  # the stalled request has reached the tier

        answer = await limited.post("/query", json=VALID)

        assert answer.status_code == 200  # max_in_flight is 1: the stalled request took none
    finally:
        stalled.close()


async def test_a_chunked_body_over_the_limit_with_a_key_is_a_413(limited):
    body = json.dumps({"prompt": "x" * BODY_LIMIT, "max_tokens": 5}).encode()
    head = (
        f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: {AUTHORIZATION['Authorization']}\r\n\r\n"
    ).encode()

    answer = parse_answer(
        await asyncio.to_thread(exchange, port_of(limited), head, f"{len(body):x}\r\n".encode() + body + b"\r\n")
    )

    assert answer.status == 413
    problem = json.loads(answer.body)
    assert (problem["title"], problem["detail"]) == ("Content Too Large", f"request body exceeds {BODY_LIMIT} bytes")


async def test_a_chunked_query_with_a_key_is_answered(limited):
    async def chunks():
        yield json.dumps(VALID).encode()

    answer = await limited.post("/query", content=chunks(), headers={"Content-Type": "application/json"})

    assert answer.status_code == 200
    assert answer.json()["text"] == "echo: Hi there you"


async def test_a_client_that_hangs_up_during_a_ui_download_is_a_499_line_not_a_traceback(limited, caplog):
    caplog.set_level(logging.INFO, logger="lambdallm.rest.access")

    def download_and_hang_up() -> bytes:
        with socket.create_connection(("127.0.0.1", port_of(limited)), timeout=10) as sock:
            sock.sendall(b"GET /ui/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # pipelined, as browsers may
            return sock.recv(4096)

    assert (await asyncio.to_thread(download_and_hang_up)).startswith(b"HTTP/1.1 200 ")
    for _ in range(300):
        if [r for r in caplog.records if getattr(r, "path", "") == "/ui/swagger-ui-bundle.js"]:
            break
        await asyncio.sleep(0.01)  # until the tier logs the request's end

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    (line,) = [r for r in caplog.records if getattr(r, "path", "") == "/ui/swagger-ui-bundle.js"]
    assert line.status == 499  # the pipelined ones behind it never started
