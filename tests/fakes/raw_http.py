"""HTTP/1.1 requests written byte for byte on a socket, so tests can send what no HTTP client would."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawAnswer:
    """A parsed HTTP answer: status, lower-cased headers, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def build_request(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    port: int,
    length: bool = True,
    host: str | None = None,
) -> bytes:
    """The request's bytes: request line, `Host` (the server's address unless `host`), `headers` as given,
    `Content-Length` (unless `length` is off or `headers` has one), `Connection: close`, then `body` (framed in
    chunks if a header says chunked)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Connection: close"]
    names = {name.lower() for name, _ in headers}
    lines += [f"{name}: {value}" for name, value in headers]
    if length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    if any(name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in headers):
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


LARGE_BODY = 65536  # over this, the client asks `Expect: 100-continue` first, as curl does (from 1 MB)


def send_raw(port: int, request: bytes, timeout: float = 10.0) -> RawAnswer:
    """Send `request` to 127.0.0.1:`port` and read the whole answer (the server closes after it).

    A large body waits for the server's `100 Continue`: a server that refuses the request at its head (413)
    answers and closes without reading the body, and a client still sending it would see a reset instead of
    the answer (RFC 9112 9.6). A request whose `Content-Length` is not its body's length may have no answer
    (status 0): one that promises more keeps the server rightly waiting, so the client hangs up once it has
    sent it; one that promises less leaves bytes the server never reads, so its close may reset the answer.
    Any other request must have an answer."""
    misframed = content_length(request) not in (None, len(request.partition(b"\r\n\r\n")[2]))
    head, _, body = request.partition(b"\r\n\r\n")
    data = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            if len(body) > LARGE_BODY and b"\r\nexpect:" not in head.lower():
                sock.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
                data += sock.recv(65536)
                if data.startswith(b"HTTP/1.1 100 "):
                    sock.sendall(body)
            else:
                sock.sendall(request)
            if misframed:
                with contextlib.suppress(OSError):  # the server may have closed already
                    sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                data += chunk
    except (ConnectionResetError, BrokenPipeError):
        if not misframed:
            raise
        data.clear()
    if not data:
        assert misframed, "the server closed the connection without an answer"
        return RawAnswer(0)
    return parse_answer(bytes(data))


def send_whole(port: int, request: bytes, timeout: float = 30.0) -> RawAnswer:
    """Send all of `request` at once, as a client that does not ask `Expect: 100-continue` does, then read the
    answer. A server that answers before reading the whole body must keep reading it (lingering close, RFC 9112
    9.6): one that closes at once resets the connection, and the client sees the reset, not the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    return parse_answer(bytes(data))


def content_length(request: bytes) -> int | None:
    """`request`'s (last) Content-Length, if it has one that is a number."""
    head = request.partition(b"\r\n\r\n")[0]
    lengths = [line[15:].strip() for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"content-length:")]
    return int(lengths[-1]) if lengths and lengths[-1].isdigit() else None


def parse_answer(data: bytes) -> RawAnswer:
    """Status, headers and body of one HTTP/1.1 answer (sized or chunked), after any 1xx interim answers."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    if 100 <= status < 200:
        return parse_answer(rest)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = bytearray()
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        return RawAnswer(status, headers, bytes(body))
    return RawAnswer(status, headers, rest)


_TCP_ESTABLISHED = 1


def closed_by_server(sock: socket.socket, timeout: float = 20.0) -> bool:
    """Whether the server closes (or resets) `sock` within `timeout`, read without taking any of its bytes: a
    client that never reads its answer must see the connection end all the same. Polls the kernel's TCP state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != _TCP_ESTABLISHED:
            return True
        time.sleep(0.02)
    return False


def read_until_closed(sock: socket.socket, timeout: float = 20.0) -> bytes:
    """Everything the server sends on `sock` until it closes or resets it; socket.timeout if it does not within
    `timeout`."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)
