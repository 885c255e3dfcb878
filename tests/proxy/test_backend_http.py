"""The proxy's HTTP/1.1 client against raw servers on loopback that answer byte for byte as each test says."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from lambdallm.proxy.backend_http import BackendHTTP, BrokenAnswer, ConnectTimeout, Unreachable

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (by its Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


class Server:
    """A loopback server whose connections each run `answer`; it records heads and counts connections."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.heads: list[bytes] = []
        self.closed = asyncio.Event()  # a connection the client closed

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed.set()
        finally:
            writer.close()


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[tuple[Server, str]]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def keep_answering(body: bytes, after: asyncio.Event | None = None) -> Answer:
    """Answer every request of the connection with a 200 of `body` (Content-Length), each once `after` is set."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if after is not None:
                await after.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    return answer


async def ask(url: str) -> None:
    """A POST whose answer's head is all that is waited for."""
    async with BackendHTTP(url, 4, 2).request("POST", "/", b"{}", {}, 5):
        pass


async def read_lines(url: str, seen: list[bytes], timeout_s: float = 5) -> None:
    """A POST's answer read line by line into `seen`, which keeps what came before a failure."""
    async with BackendHTTP(url, 4, 2).request("POST", "/", b"{}", {}, timeout_s) as response:
        async for group in response.line_groups(1024):
            seen.extend(group)


async def test_lines_come_whole_across_chunks_and_the_request_is_as_sent() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        server.heads.append(head + body)
        writer.write(CHUNKED_HEAD + chunk(b'{"a": 1}\n{"b"') + chunk(b": 2}\n") + chunk(b"tail") + chunk(b""))

    async with serving(answer) as (server, url):
        client = BackendHTTP(url + "/prod", max_connections=4, connect_timeout_s=2)
        headers = {"Content-Type": "application/json", "X-Request-ID": "r1"}
        async with client.request("POST", "/prod/query/stream", b'{"x": 1}', headers, 5) as response:
            groups = [group async for group in response.line_groups(1024)]

    assert (response.status, response.headers["content-type"]) == (200, "application/x-ndjson")
    assert [line for group in groups for line in group] == [b'{"a": 1}\n', b'{"b": 2}\n', b"tail"]
    port = url.rsplit(":", 1)[1]
    assert server.heads == [
        b"POST /prod/query/stream HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nContent-Length: 8\r\n"
        b"User-Agent: lambdallm-proxy\r\nContent-Type: application/json\r\nX-Request-ID: r1\r\n\r\n"
        b'{"x": 1}' % port.encode()
    ]


async def test_lines_that_arrive_with_the_end_while_the_reader_is_busy_are_all_read() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"0\n"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"".join(chunk(b"%d\n" % n) for n in range(1, 50)) + chunk(b""))
        await reader.read()

    async with serving(answer) as (_, url):
        groups = []
        async with BackendHTTP(url, 4, 2).request("POST", "/", b"{}", {}, 5) as response:
            async for group in response.line_groups(1024):
                groups.append(group)
                await asyncio.sleep(0.2 if len(groups) == 1 else 0)  # the rest, and the end, come meanwhile

    assert groups == [[b"0\n"], [b"%d\n" % n for n in range(1, 50)]]  # what came in one read, together


async def test_a_connection_read_to_its_end_carries_the_next_request() -> None:
    async with serving(keep_answering(b"hello")) as (server, url):
        client = BackendHTTP(url, max_connections=4, connect_timeout_s=2)
        for _ in range(3):
            async with client.request("GET", "/models", b"", {}, 5) as response:
                assert await response.read(100) == b"hello"

    assert server.connections == 1


async def test_a_connection_left_before_its_answer_ended_is_closed_not_reused() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)  # the rest never comes
        await reader.read()

    async with serving(answer) as (server, url):
        client = BackendHTTP(url, max_connections=4, connect_timeout_s=2)
        for _ in range(2):
            async with client.request("GET", "/models", b"", {}, 5) as response:
                assert response.status == 200  # the body is never read

    assert server.connections == 2


async def test_an_idle_connection_past_keepalive_is_not_used_again() -> None:
    async with serving(keep_answering(b"ok")) as (server, url):
        client = BackendHTTP(url, max_connections=4, connect_timeout_s=2, keepalive_s=0.05)
        for _ in range(2):
            async with client.request("GET", "/models", b"", {}, 5) as response:
                await response.read(10)
            await asyncio.sleep(0.1)

    assert server.connections == 2


async def test_a_body_past_the_limit_is_none_by_length_or_as_it_arrives() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"x" * 300))
        await reader.read()  # never ends its body

    async def read_within(answer: Answer, limit: int) -> bytes | None:
        async with serving(answer) as (_, url), BackendHTTP(url, 4, 2).request("GET", "/", b"", {}, 5) as response:
            return await response.read(limit)

    assert await read_within(keep_answering(b"y" * 300), 299) is None  # by its Content-Length
    assert await read_within(answer, 299) is None  # chunked: as soon as more than the limit has come
    assert await read_within(keep_answering(b"y" * 300), 300) == b"y" * 300


async def test_a_line_past_the_limit_is_a_value_error() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"x" * 2000))
        await reader.read()

    async with serving(answer) as (_, url):
        with pytest.raises(ValueError, match="too long"):
            await read_lines(url, [])


async def test_a_connection_closed_before_the_answer_is_unreachable() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serving(answer) as (_, url):
        with pytest.raises(Unreachable):
            await ask(url)


async def test_a_connection_closed_mid_body_is_a_broken_answer_after_what_came() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"one\ntwo"))

    async with serving(answer) as (_, url):
        seen: list[bytes] = []
        with pytest.raises(BrokenAnswer, match="payload is not completed"):
            await read_lines(url, seen)
    assert seen == [b"one\n"]


@pytest.mark.parametrize("reset", [False, True])
async def test_a_body_without_length_ends_with_the_connection_unless_it_is_reset(reset: bool) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()
        await asyncio.sleep(0.1)  # the client has read what came
        if reset:  # SO_LINGER 0: close with a reset, not a FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with serving(answer) as (server, url):
        client = BackendHTTP(url, 4, 2)
        async with client.request("GET", "/", b"", {}, 5) as response:
            if reset:
                with pytest.raises(BrokenAnswer):
                    await response.read(100)
            else:
                assert await response.read(100) == b"all of it"
        async with client.request("GET", "/", b"", {}, 5) as response:
            pass  # a connection that ended its answer by closing is never used again
    assert server.connections == 2


async def test_an_answer_that_is_not_http_is_a_broken_answer() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await reader.read()

    async with serving(answer) as (_, url):
        with pytest.raises(BrokenAnswer, match="not HTTP"):
            await ask(url)


async def test_the_total_time_bounds_the_body_and_closes_the_connection() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD + chunk(b"first\n"))
        await writer.drain()
        await reader.read()  # until the client closes
        server.closed.set()

    async with serving(answer) as (server, url):
        seen: list[bytes] = []
        with pytest.raises(TimeoutError):
            await read_lines(url, seen, timeout_s=0.5)
        await asyncio.wait_for(server.closed.wait(), 5)
    assert seen == [b"first\n"]


async def test_a_request_beyond_max_connections_waits_for_one_to_be_free() -> None:
    release = asyncio.Event()

    async def fetch(client: BackendHTTP) -> bytes | None:
        async with client.request("GET", "/", b"", {}, 5) as response:
            return await response.read(10)

    async with serving(keep_answering(b"ok", after=release)) as (server, url):
        client = BackendHTTP(url, max_connections=1, connect_timeout_s=2)
        first, second = asyncio.ensure_future(fetch(client)), asyncio.ensure_future(fetch(client))
        await asyncio.sleep(0.2)
        assert server.connections == 1 and not second.done()
        release.set()
        assert await asyncio.gather(first, second) == [b"ok", b"ok"]
    assert server.connections == 1  # the second request went out on the first's connection


async def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(Unreachable):
        async with BackendHTTP(f"http://127.0.0.1:{port}", 4, 2).request("GET", "/", b"", {}, 5):
            pass


async def test_a_listener_that_never_accepts_is_a_connect_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        waiting = []  # fill the accept queue: the kernel then drops the next connection's SYN
        for _ in range(4):
            pending = socket.socket()
            pending.setblocking(False)
            pending.connect_ex(("127.0.0.1", port))
            waiting.append(pending)
        try:
            with pytest.raises(ConnectTimeout):
                async with BackendHTTP(f"http://127.0.0.1:{port}", 4, 0.3).request("GET", "/", b"", {}, 5):
                    pass
        finally:
            for pending in waiting:
                pending.close()
