"""The streaming function's Runtime API loop against a Runtime API on loopback: one invocation, streamed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llm_lambda import runtime

EVENT = {"httpMethod": "POST", "path": "/query/stream", "body": "{}"}


class RuntimeApi(BaseHTTPRequestHandler):
    """The two Runtime API calls the loop makes: next invocation, and its (chunked) response."""

    received: list[bytes]
    headers_seen: dict[str, str]
    first_chunk: threading.Event

    def do_GET(self) -> None:
        assert self.path == "/2018-06-01/runtime/invocation/next"
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "inv-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:1:function:f")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        assert self.path == "/2018-06-01/runtime/invocation/inv-1/response"
        type(self).headers_seen = dict(self.headers.items())
        while size := int(self.rfile.readline().strip(), 16):
            type(self).received.append(self.rfile.read(size))
            self.rfile.readline()
            self.first_chunk.set()
        self.rfile.readline()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, type[RuntimeApi]]]:
    handler = type("Api", (RuntimeApi,), {"received": [], "headers_seen": {}, "first_chunk": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_each_piece_reaches_the_runtime_api_as_the_handler_yields_it(api: tuple[str, type[RuntimeApi]]) -> None:
    address, seen = api
    contexts: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> Iterator[bytes]:
        contexts.append(context)
        assert event == EVENT
        yield b'{"statusCode": 200}' + b"\0" * 8
        # The next piece is made only once the Runtime API holds the first: nothing waits to be buffered.
        assert seen.first_chunk.wait(10)
        yield b'{"type": "text", "text": "Hi"}\n'

    runtime.serve(address, handler, invocations=1)

    assert seen.received == [b'{"statusCode": 200}' + b"\0" * 8, b'{"type": "text", "text": "Hi"}\n']
    assert seen.headers_seen["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert seen.headers_seen["Transfer-Encoding"] == "chunked"
    assert contexts[0].aws_request_id == "inv-1"
    assert contexts[0].get_remaining_time_in_millis() > 0
