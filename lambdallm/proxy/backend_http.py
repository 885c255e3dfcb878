"""The proxy's HTTP/1.1 client for the backend: a bounded pool of keep-alive connections, one request at a time on
each, every response parsed by httptools (uvicorn's parser, C) as its bytes arrive and read as they come.

It does what the proxy needs and no more: POST and GET of whole bodies, connect and total timeouts, bodies and lines
read within bounds. A general client (aiohttp, which this replaced) spent about 1.6 times the CPU of this one per
generation (issue 28; the measurement is in bench/README.md)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httptools

_SET_HERE = frozenset({"host", "content-length", "user-agent"})  # request headers this client writes itself
USER_AGENT = "lambdallm-proxy"  # some gateways and firewalls in front of a backend refuse requests without one


class BackendHTTPError(Exception):
    """The backend could not be asked, or its answer could not be read."""


class Unreachable(BackendHTTPError):
    """No connection, or one the backend closed before its answer began."""


class ConnectTimeout(Unreachable):
    """No connection within the connect timeout."""


class BrokenAnswer(BackendHTTPError):
    """An answer that is not HTTP, or cut before its end."""


class _Connection(asyncio.Protocol):
    """One connection, and the answer being read on it (httptools' callbacks fill it in)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.failure: BaseException | None = None  # set once the connection can carry nothing more
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = self.complete = self.keep_alive = False
        self.body = bytearray()  # what has arrived of the body and is not yet taken

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BrokenAnswer(f"the backend's answer is not HTTP/1.1: {exc}"))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head_done:
            self._fail(Unreachable("the backend closed the connection before it answered"))
        elif not self.complete and exc is None and self._ends_at_close():
            self.complete = True  # a body without length or chunks ends with the connection (closed, not reset)
        elif not self.complete:
            self._fail(BrokenAnswer("Response payload is not completed: the backend closed the connection"))
        self.failure = self.failure or ConnectionResetError("connection closed")
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()  # the parser forgets it once the message is complete
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    def _ends_at_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get("transfer-encoding", "")

    def _fail(self, failure: BaseException) -> None:
        if self.failure is None:
            self.failure = failure
        if self.transport is not None:
            self.transport.close()

    def expire(self) -> None:
        """The request's time is up: whatever waits on this connection raises TimeoutError, and it closes."""
        self._fail(TimeoutError("the backend did not answer in time"))
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def more(self) -> None:
        """Wait for more of the answer; raise what ended the connection if it has ended and the answer has not."""
        if self.failure is not None and not self.complete:
            raise self.failure
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter
        if self.failure is not None and not self.complete and not self.body:
            raise self.failure

    def closing(self) -> bool:
        """Whether the connection is closing (the backend's FIN has come, say) before connection_lost says so."""
        return self.transport is None or self.transport.is_closing()

    def reusable(self) -> bool:
        return self.complete and self.failure is None and self.keep_alive

    def release(self) -> None:
        """Close it for good, and let go of what refers back to it (its parser, which calls it back; the failure
        raised from it, whose traceback holds its frames): it is freed at once, not left as a cycle to the
        garbage collector (a backend request cancelled by a client gone ends here)."""
        if self.transport is not None:
            self.transport.close()
        self._parser = self.failure = None  # type: ignore[assignment]  # nothing reads either once released

    def send(self, request: bytes) -> None:
        self._reset()
        assert self.transport is not None
        self.transport.write(request)


class Response:
    """A backend answer being read: its status and headers, then its body, whole or line by line."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers

    async def read(self, limit: int) -> bytes | None:
        """The whole body, or None as soon as it exceeds `limit` bytes."""
        connection = self._connection
        if int(self.headers.get("content-length") or 0) > limit:
            return None
        while not connection.complete:
            if len(connection.body) > limit:
                return None
            await connection.more()
        body = bytes(connection.body)
        connection.body.clear()
        return body if len(body) <= limit else None

    async def line_groups(self, max_line: int) -> AsyncIterator[list[bytes]]:
        """The body's lines (each with its newline) as they arrive, those that came in one read together, so that
        a reader can pass on at once what the sender wrote at once; ValueError for a line over `max_line` bytes."""
        connection = self._connection
        pending = b""
        while connection.body or not connection.complete:  # bytes may arrive (and the answer end) while it yields
            if not connection.body:
                await connection.more()
                continue
            pending += connection.body
            connection.body.clear()
            *lines, pending = pending.split(b"\n")
            if lines:
                yield [line + b"\n" for line in lines]
            if len(pending) > max_line:
                raise ValueError("a line is too long")
        if pending:
            yield [pending]

    async def drain(self, limit: int) -> None:
        """Read the rest of the body, so that the connection can carry the next request; past `limit` bytes,
        give up (and the connection closes)."""
        await self.read(limit)


class BackendHTTP:
    """Keep-alive connections to one origin, at most `max_connections` open; a request beyond them waits for one."""

    def __init__(self, url: str, max_connections: int, connect_timeout_s: float, keepalive_s: float = 30.0) -> None:
        parts = urlsplit(url)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = 443 if self._tls else 80
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or default_port
        self.host_header = parts.hostname if self._port == default_port else f"{parts.hostname}:{self._port}"
        self._connect_timeout_s, self._keepalive_s = connect_timeout_s, keepalive_s
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    @asynccontextmanager
    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> AsyncIterator[Response]:
        """Send the request and hand over its answer once its head has arrived, all within `timeout_s` (its
        body's reading included). The connection goes back to the pool if the answer was read to its end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with asyncio.timeout_at(deadline):
            await self._slots.acquire()
        connection: _Connection | None = None
        timer: asyncio.TimerHandle | None = None
        try:
            connection = await self._connection(deadline)
            timer = loop.call_at(deadline, connection.expire)
            connection.send(self._head(method, path, body, headers) + body)
            while not connection.head_done:
                await connection.more()
            yield Response(connection)
        finally:
            if timer is not None:
                timer.cancel()
            if connection is not None and connection.reusable():
                connection.idle_since = loop.time()
                self._idle.append(connection)
            elif connection is not None:
                connection.release()
            self._slots.release()

    async def _connection(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely to be closing
            fresh = loop.time() - connection.idle_since < self._keepalive_s
            if fresh and connection.failure is None and not connection.closing():
                return connection
            if connection.transport is not None:
                connection.transport.close()
        connect = loop.create_connection(_Connection, self._host, self._port, ssl=self._tls)
        connect_by = min(deadline, loop.time() + self._connect_timeout_s)
        try:
            async with asyncio.timeout_at(connect_by):
                _, connection = await connect
        except TimeoutError:
            if connect_by < deadline:
                raise ConnectTimeout("no connection to the backend within the connect timeout") from None
            raise
        except OSError as exc:
            raise Unreachable(f"no connection to the backend: {exc}") from exc
        return connection

    def _head(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        lines.append(f"User-Agent: {USER_AGENT}")
        lines += (f"{name}: {value}" for name, value in headers.items() if name.lower() not in _SET_HERE)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def close(self) -> None:
        """Close the idle connections (those in use close when their requests end)."""
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
