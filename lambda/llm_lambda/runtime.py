"""A Lambda runtime loop for `stream_handler`: the Runtime API's streaming response mode, which Python's managed
runtime lacks. `lambda/stream-runtime` starts it in place of the managed loop (deploy/README.md says why)."""

from __future__ import annotations

import http.client
import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

API = "/2018-06-01/runtime"
StreamHandler = Callable[[dict[str, Any], Any], Iterator[bytes]]
logger = logging.getLogger("llm_lambda.runtime")


@dataclass(frozen=True)
class Context:
    """The Lambda context object, from the Runtime API's invocation headers and the environment."""

    aws_request_id: str
    deadline_ms: int
    invoked_function_arn: str
    function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    function_version: str = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    memory_limit_in_mb: str = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    log_group_name: str = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
    log_stream_name: str = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, self.deadline_ms - int(time.time() * 1000))


def load_handler(name: str) -> StreamHandler:
    """`module.function` (the function's Handler setting) imported."""
    module, _, function = name.rpartition(".")
    handler: StreamHandler = getattr(importlib.import_module(module), function)
    return handler


def serve(api: str, handler: StreamHandler, invocations: int | None = None) -> None:
    """Take invocations from the Runtime API at `api` (host:port) and stream each answer back as it is made;
    `invocations` bounds the loop (tests), None serves until the environment is frozen or shut down."""
    connection = http.client.HTTPConnection(api)
    served = 0
    while invocations is None or served < invocations:
        connection.request("GET", f"{API}/invocation/next")
        response = connection.getresponse()
        event = json.loads(response.read())
        context = Context(
            aws_request_id=response.headers["Lambda-Runtime-Aws-Request-Id"],
            deadline_ms=int(response.headers.get("Lambda-Runtime-Deadline-Ms", "0")),
            invoked_function_arn=response.headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
        )
        respond(connection, context.aws_request_id, handler(event, context))
        served += 1


def respond(connection: http.client.HTTPConnection, request_id: str, body: Iterator[bytes]) -> None:
    """POST the invocation's response in streaming mode: chunked, each piece sent as soon as it is made."""
    # No length: http.client sends an iterable body chunked, one chunk per piece as the handler yields it.
    headers = {
        "Lambda-Runtime-Function-Response-Mode": "streaming",
        "Content-Type": "application/vnd.awslambda.http-integration-response",
    }
    try:
        connection.request("POST", f"{API}/invocation/{request_id}/response", body=body, headers=headers)
        connection.getresponse().read()
    except OSError:
        logger.warning("the Runtime API closed the response stream", extra={"aws_request_id": request_id})
        connection.close()  # reconnects on the next request
    finally:
        close = getattr(body, "close", None)
        if close:
            close()  # stops the handler, and with it Bedrock's stream, if the stream was cut short


def main() -> None:
    """Entry point of the streaming function's runtime (`python -m llm_lambda.runtime`)."""
    serve(os.environ["AWS_LAMBDA_RUNTIME_API"], load_handler(os.environ["_HANDLER"]))


if __name__ == "__main__":
    main()
