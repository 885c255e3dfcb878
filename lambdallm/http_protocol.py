"""uvicorn's HTTP protocol, answering the requests it cannot parse itself in the error shape of the tier
(uvicorn's own answer is a text/plain 400): a bad method, header or length never reaches the app, so this is the
one place for them. problem+json for the REST tier and the local API Gateway, Bedrock's error for the local
Bedrock. It also ends a connection whose answer came before the request's whole body with a lingering close."""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PROBLEM_JSON = b"application/problem+json"
NOT_HTTP = "the request is not valid HTTP/1.1 (request line, a header or the body framing)"
# After an answer sent before the request's whole body came (a 413 on its Content-Length), the server shuts its
# write side and reads and drops what the client still sends, within these bounds, before it closes (RFC 9112
# 9.6, nginx's lingering_close): closing with unread bytes makes the kernel send a reset, which can reach the
# client before it reads the answer. The byte bound is above the largest limit (the local Bedrock's 25 MB), so a
# client that writes its whole body before it reads still reads the refusal.
LINGER_S = 2.0
LINGER_BYTES = 64 * 1024 * 1024


def problem_400(detail: str) -> bytes:
    """The problem+json body of a 400 that uvicorn answers before the app sees the request."""
    problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail}
    return json.dumps(problem).encode()


class ProblemHttpProtocol(HttpToolsProtocol):
    """httptools' protocol whose parser refusals are problem+json, and whose early answers close lingering."""

    _linger_timer: asyncio.TimerHandle | None = None
    _linger_left = 0

    def refusal(self) -> tuple[list[bytes], bytes]:
        """The header lines (without the default ones, the length and `connection`) and the body of the 400."""
        return [b"content-type: " + PROBLEM_JSON + b"\r\n"], problem_400(NOT_HTTP)

    def send_400_response(self, msg: str) -> None:
        lines, body = self.refusal()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [*lines, b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the body of its request broke off: its app sees the client gone
            self.cycle.message_event.set()
        self.linger()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # a new request (not an upgrade)
            self.cycle.transport = CycleTransport(self, self.cycle)

    def linger(self) -> None:
        """End the connection once the answer is out: shut the write side, then read and drop what the client
        still sends until it closes, or LINGER_S or LINGER_BYTES have passed."""
        if self._linger_timer is not None or self.transport.is_closing():
            return
        self._linger_left = LINGER_BYTES
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
        if self.transport.can_write_eof():  # TLS cannot half-close: the client's own close ends it then
            self.transport.write_eof()
        self.flow.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is None:
            super().data_received(data)
            return
        self._linger_left -= len(data)
        if self._linger_left < 0:
            self.transport.close()

    def on_response_complete(self) -> None:
        if self._linger_timer is None:
            super().on_response_complete()
        else:  # no keep-alive and no next request on a lingering connection
            self.server_state.total_requests += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)


class CycleTransport(asyncio.Transport):
    """The connection as one request's cycle sees it: an answer that starts before the request's whole body came
    says `connection: close` (uvicorn would keep the connection and drop the rest of the body without bound), and
    its close lingers."""

    def __init__(self, protocol: ProblemHttpProtocol, cycle: RequestResponseCycle) -> None:
        super().__init__()
        self.protocol, self.cycle, self.head_written = protocol, cycle, False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.head_written and self.cycle.response_started:  # the answer's head (after any 100 Continue)
            self.head_written = True
            if self.cycle.more_body and self.cycle.keep_alive:
                self.cycle.keep_alive = False  # so the cycle closes the connection once the answer is out
                data = bytes(data[:-2]) + b"connection: close\r\n\r\n"  # the head ends with an empty line
        self.protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self.protocol.transport.is_closing()

    def close(self) -> None:
        if self.cycle.more_body and not self.cycle.disconnected:
            self.protocol.linger()
        else:
            self.protocol.transport.close()


class BedrockHttpProtocol(ProblemHttpProtocol):
    """The local Bedrock's: its parser refusals are a ValidationException, as boto3 reads Bedrock's errors."""

    def refusal(self) -> tuple[list[bytes], bytes]:
        lines = [b"content-type: application/json\r\n", b"x-amzn-errortype: ValidationException:\r\n"]
        return lines, json.dumps({"message": NOT_HTTP}).encode()
