"""uvicorn's HTTP protocol, answering the requests it cannot parse itself in the error shape of the tier
(uvicorn's own answer is a text/plain 400): a bad method, header or length never reaches the app, so this is the
one place for them. problem+json for the REST tier and the local API Gateway, Bedrock's error for the local
Bedrock. It also ends a connection whose answer came before the request's whole body with a lingering close,
and bounds every connection in time and number (`ConnectionLimits`): a request's header block and its body each
within their time, a client that reads nothing of its answer dropped, at most `max_connections` at once."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from lambdallm.coalesced_writes import CoalescedWrites
from llm_wire import problems
from llm_wire.problems import problem_bytes

PROBLEM_JSON = problems.PROBLEM_JSON.encode()
NOT_HTTP = "the request is not valid HTTP/1.1 (request line, a header or the body framing)"
# After an answer sent before the request's whole body came (a 413 on its Content-Length), the server shuts its
# write side and reads and drops what the client still sends, within these bounds, before it closes (RFC 9112
# 9.6, nginx's lingering_close): closing with unread bytes makes the kernel send a reset, which can reach the
# client before it reads the answer. The byte bound is above the largest limit (the local Bedrock's 25 MB), so a
# client that writes its whole body before it reads still reads the refusal.
LINGER_S = 2.0
LINGER_BYTES = 64 * 1024 * 1024


REASONS = {400: b"Bad Request", 408: b"Request Timeout"}
# The scope's extension in which the protocol says it answered a request itself (a 408 for a body too slow, a 400
# for broken framing): the request's app sees only the client gone, so access logs and metrics read the status here.
ANSWERED = "lambdallm.answered"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take, and how many connections a server keeps (each tier's settings set them)."""

    # From the connection (or a request's first byte) to the end of its header block.
    header_timeout_s: float = 5.0
    # From the end of the header block to the end of the body; then a 408 and the connection closes.
    body_timeout_s: float = 15.0
    # Bytes of an answer waiting to be sent that the client does not read within this are dropped, with it.
    write_timeout_s: float = 15.0
    # Connections open at once; one more is closed at once.
    max_connections: int = 1000


def answered_by_server(scope: Mapping[str, Any]) -> int:
    """The status the protocol answered the request of `scope` with itself (its app's answer never went out), or 0."""
    return int(scope.get("extensions", {}).get(ANSWERED, {}).get("status", 0))


def problem(status: int, detail: str) -> bytes:
    """The problem+json body of an answer the protocol gives itself (a 400 or a 408)."""
    return problem_bytes(status, detail, title=REASONS[status].decode())


class TierLimits(Protocol):
    """The keys of a tier's settings that bound its connections."""

    @property
    def header_timeout_s(self) -> float: ...
    @property
    def body_timeout_s(self) -> float: ...
    @property
    def write_timeout_s(self) -> float: ...
    @property
    def max_connections(self) -> int: ...


def connection_limits(settings: TierLimits) -> ConnectionLimits:
    """The ConnectionLimits a tier's settings ask for."""
    return ConnectionLimits(
        settings.header_timeout_s, settings.body_timeout_s, settings.write_timeout_s, settings.max_connections
    )


class ProblemHttpProtocol(HttpToolsProtocol):
    """httptools' protocol whose parser refusals are problem+json, whose early answers close lingering, and whose
    connections are bounded by `limits` (`with_limits` makes the class a server uses)."""

    limits = ConnectionLimits()
    _linger_timer: asyncio.TimerHandle | None = None
    _linger_left = 0
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _close_timer: asyncio.TimerHandle | None = None
    _running: RequestResponseCycle | None = None  # the request whose app runs (pipelined ones wait behind it)
    _in_header_block = False  # a request's header block has begun and not ended

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[ProblemHttpProtocol]:
        """This protocol class with `limits` (uvicorn makes one protocol per connection from a class)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def refusal(self, status: int = 400, detail: str = NOT_HTTP) -> tuple[list[bytes], bytes]:
        """The header lines (without the default ones, the length and `connection`) and the body of an answer
        the protocol gives itself."""
        return [b"content-type: " + PROBLEM_JSON + b"\r\n"], problem(status, detail)

    def send_400_response(self, msg: str) -> None:
        self.send_refusal(400, NOT_HTTP)
        self.linger()

    def send_refusal(self, status: int, detail: str) -> None:
        """Answer `status` with `detail` and `connection: close`; the request's app, if any, sees the client gone."""
        lines, body = self.refusal(status, detail)
        head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [*lines, b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.scope.setdefault("extensions", {})[ANSWERED] = {"status": status}
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the body of its request broke off: its app sees the client gone
            self.cycle.message_event.set()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescedWrites(transport, self.loop)  # type: ignore[assignment]  # a Transport's methods
        if len(self.connections) > self.limits.max_connections:
            self.drop()
            return
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {}  # before the app copies its scope, so that every copy shares it (ANSWERED)
        self._in_header_block = True  # timed from the end of this read on, if the block is not whole by then

    def on_headers_complete(self) -> None:
        self._in_header_block = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # a new request (not an upgrade)
            self.cycle.transport = CycleTransport(self, self.cycle)

    def _time_what_is_partial(self) -> None:
        """After a read: time a header block or a body that has begun and not ended. Most requests come whole in
        one read, so no timer is made (and cancelled) for them: starting a timer per request at its first byte
        cost the REST hop a few microseconds each."""
        if self._linger_timer is not None or self.transport.is_closing():
            return
        if self._in_header_block and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)
        if not self.pipeline:  # a request queued behind another is not read until it starts
            self._start_body_timer()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _start_body_timer(self) -> None:
        cycle = self.cycle
        if self._body_timer is None and cycle is not None and cycle.more_body and not cycle.response_complete:
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self.drop()  # nothing is owed to a client that has not sent a request

    def drop(self) -> None:
        """Reset the connection now: no answer, and nothing left queued in the kernel (a plain close would keep
        sending what the client does not read, and keep the memory it takes, for minutes)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.cycle is None or not self.cycle.response_started:
            self.send_refusal(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s")
        self.close()

    def close(self) -> None:
        """Close once what is queued is sent, or drop the connection if the client has not read it within
        write_timeout_s: a plain close waits for the client as long as it likes."""
        self.transport.close()
        if self._close_timer is None:
            self._close_timer = self.loop.call_later(self.limits.write_timeout_s, self.drop)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.write_timeout_s, self.drop)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def linger(self) -> None:
        """End the connection once the answer is out: shut the write side, then read and drop what the client
        still sends until it closes, or LINGER_S or LINGER_BYTES have passed."""
        if self._linger_timer is not None or self.transport.is_closing():
            return
        self._linger_left = LINGER_BYTES
        self._linger_timer = self.loop.call_later(LINGER_S, self.close)
        if self.transport.can_write_eof():  # TLS cannot half-close: the client's own close ends it then
            self.transport.write_eof()
        self.flow.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is None:
            super().data_received(data)
            self._time_what_is_partial()
            return
        self._linger_left -= len(data)
        if self._linger_left < 0:
            self.close()

    def on_response_complete(self) -> None:
        if self._linger_timer is None:
            super().on_response_complete()
            self._start_body_timer()  # of the pipelined request that starts now, if one did
        else:  # no keep-alive and no next request on a lingering connection
            self.server_state.total_requests += 1

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._linger_timer, self._header_timer, self._body_timer, self._write_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        running = self._running
        if running is not None and running is not self.cycle and not running.response_complete:
            # uvicorn tells only the newest request of the connection; with requests pipelined behind it, the one
            # answering would write on, then fail on the closed connection (a traceback, not a 499 line).
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)
        # uvicorn stops the keep-alive timer only when the connection ended cleanly: after a reset its timer kept
        # the protocol, its parser and its last request alive for keep_alive_s (issue 26: abandoned streams).
        self._unset_keepalive_if_required()
        # Each request refers to the protocol (its answer's end is a callback): without these, the connection
        # would be a cycle for the garbage collector. Requests queued behind the running one never start now.
        self.cycle = self._running = None  # type: ignore[assignment]  # uvicorn's own attribute is not Optional
        self.pipeline.clear()


class CycleTransport(asyncio.Transport):
    """The connection as one request's cycle sees it: an answer that starts before the request's whole body came
    says `connection: close` (uvicorn would keep the connection and drop the rest of the body without bound), and
    its close lingers. It refers to its cycle weakly (only the cycle writes here, so the cycle is alive then):
    each request would otherwise be a cycle, a few dozen objects, for the garbage collector."""

    def __init__(self, protocol: ProblemHttpProtocol, cycle: RequestResponseCycle) -> None:
        super().__init__()
        self.protocol, self._cycle, self.head_written = protocol, weakref.ref(cycle), False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.protocol.transport.is_closing():  # closed under it (dropped): the client will never read it
            return
        cycle = self._cycle()
        if not self.head_written and cycle is not None and cycle.response_started:  # its head (after a 100)
            self.head_written = True
            if cycle.more_body and cycle.keep_alive:
                cycle.keep_alive = False  # so the cycle closes the connection once the answer is out
                data = bytes(data[:-2]) + b"connection: close\r\n\r\n"  # the head ends with an empty line
        self.protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self.protocol.transport.is_closing()

    def close(self) -> None:
        cycle = self._cycle()
        if cycle is not None and cycle.more_body and not cycle.disconnected:
            self.protocol.linger()
        else:
            self.protocol.close()


class BedrockHttpProtocol(ProblemHttpProtocol):
    """The local Bedrock's: its parser refusals are a ValidationException, as boto3 reads Bedrock's errors."""

    def refusal(self, status: int = 400, detail: str = NOT_HTTP) -> tuple[list[bytes], bytes]:
        lines = [b"content-type: application/json\r\n", b"x-amzn-errortype: ValidationException:\r\n"]
        return lines, json.dumps({"message": detail}).encode()
