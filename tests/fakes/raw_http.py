"""HTTP/1.1 requests written byte for byte on a socket, so tests can send what no HTTP client would."""

from __future__ import annotations

import socket
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
    method: str, path: str, headers: list[tuple[str, str]], body: bytes, port: int, length: bool = True
) -> bytes:
    """The request's bytes: request line, `Host`, `headers` as given, `Content-Length` (unless `length` is
    off or `headers` has one), `Connection: close`, then `body` (framed in chunks if a header says chunked)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    names = {name.lower() for name, _ in headers}
    lines += [f"{name}: {value}" for name, value in headers]
    if length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    if any(name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in headers):
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def send_raw(port: int, request: bytes, timeout: float = 10.0) -> RawAnswer:
    """Send `request` to 127.0.0.1:`port` and read the whole answer (the server closes after it).

    A request whose `Content-Length` promises more body than it carries would keep the server rightly waiting:
    the client hangs up once it has sent it, and the answer may then be none (status 0); any other request
    must have an answer."""
    short = promises_more(request)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        if short:
            sock.shutdown(socket.SHUT_WR)
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        assert short, "the server closed the connection without an answer"
        return RawAnswer(0)
    return parse_answer(bytes(data))


def promises_more(request: bytes) -> bool:
    """Whether `request`'s (last) Content-Length announces more bytes than its body has."""
    head, _, body = request.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    ]
    return bool(lengths) and lengths[-1].isdigit() and int(lengths[-1]) > len(body)


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
