"""The function's Bedrock call is one attempt: a generation that timed out is never started again."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from lambdallm.local_cloud.server import load_functions


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
    environment = {
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"http://127.0.0.1:{slow_bedrock.server_address[1]}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "BEDROCK_READ_TIMEOUT_S": "0.3",
    }
    with mock.patch.dict("os.environ"):
        lambda_handler = load_functions(environment)["QueryFunction"]
        answer = lambda_handler(event("query.json"), context)

    assert answer["statusCode"] == 504
    assert slow_bedrock.requests == 1
    assert lambda_handler.__globals__["bedrock"].meta.config.retries["total_max_attempts"] == 1
