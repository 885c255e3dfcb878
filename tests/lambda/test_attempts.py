"""The function's Bedrock call is one attempt: a generation that timed out is never started again."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function


class SlowBedrock(http.server.ThreadingHTTPServer):
    """Counts InvokeModel requests and answers none of them before the client's read timeout."""

    def __init__(self) -> None:
        self.requests = 0
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.release.wait(10)
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def slow_bedrock() -> Iterator[SlowBedrock]:
    server = SlowBedrock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def test_a_read_timeout_is_a_504_after_exactly_one_generation(
    slow_bedrock: SlowBedrock, event: Any, context: Any
) -> None:
    config = FunctionConfig(
        read_timeout_s=0.3,
        endpoint_url=f"http://127.0.0.1:{slow_bedrock.server_address[1]}",
        access_key_id="local",
        secret_access_key="local",
    )
    function = Function(config)
    answer = function.lambda_handler(event("query.json"), context)

    assert answer["statusCode"] == 504
    assert slow_bedrock.requests == 1
    assert function.bedrock.meta.config.retries["total_max_attempts"] == 1
