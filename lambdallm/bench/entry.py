"""The four ways into a running stack, each with the request body its protocol takes."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

from lambdallm import settings
from lambdallm.bench.grpc_load import locust_grpc
from lambdallm.bench.loadgen import LoadResult, wrk
from lambdallm.stack import Stack

ENTRY_POINTS = ("bedrock", "apigw", "grpc", "rest")


def query_body(prompt: str, max_tokens: int) -> dict[str, Any]:
    """The body of REST /query and of the backend's /query (the same contract), at temperature 0."""
    return {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}


def load(
    stack: Stack,
    entry: str,
    prompt: str,
    max_tokens: int,
    connections: int,
    duration_s: float,
    requests_per_connection: int | None = None,
    rest_port: int | None = None,
) -> LoadResult:
    """Load `entry` of `stack` with one fixed request from `connections` clients for `duration_s` seconds.

    With `requests_per_connection` (HTTP entry points), a fixed batch instead, ended as soon as it is answered.
    With `rest_port`, the "rest" entry is the REST tier listening there (the bench's baseline) with the stack's key.
    """
    body = query_body(prompt, max_tokens)
    ports = stack.ports
    timeout = 300.0  # queued generations of the real model wait their turn
    if entry == "grpc":
        return locust_grpc(f"127.0.0.1:{ports.grpc}", body, connections, duration_s, stack.proxy_token)
    if entry == "bedrock":
        url = f"http://127.0.0.1:{ports.bedrock}{_invoke_path()}"
        return wrk(url, titan_body(prompt, max_tokens), connections, duration_s, timeout, requests_per_connection)
    if entry == "apigw":
        url = f"http://127.0.0.1:{ports.apigw}/query"
        return wrk(url, body, connections, duration_s, timeout, requests_per_connection)
    url = f"http://127.0.0.1:{rest_port or ports.rest}/query"
    return wrk(url, body, connections, duration_s, timeout, requests_per_connection, stack.auth_headers)


def titan_body(prompt: str, max_tokens: int) -> dict[str, Any]:
    """The body of the local Bedrock's InvokeModel for the configured Titan model id, at temperature 0."""
    return {"inputText": prompt, "textGenerationConfig": {"maxTokenCount": max_tokens, "temperature": 0.0}}


def _invoke_path() -> str:
    return f"/model/{settings.load(settings.CloudSettings, 'local-cloud').model_id}/invoke"


def probe_bedrock(stack: Stack, prompt: str, max_tokens: int, duration_s: float) -> list[tuple[float, float]]:
    """One client's InvokeModel requests in a row on one keep-alive connection for `duration_s` seconds:
    (seconds from the start when each was sent, its latency in ms). Unlike wrk, it tells when each was slow."""
    body, path = json.dumps(titan_body(prompt, max_tokens)), _invoke_path()
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports.bedrock, timeout=60)
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    try:
        while (sent := time.perf_counter()) - start < duration_s:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            with connection.getresponse() as answer:
                answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"the local Bedrock answered {answer.status} to the probe")
            samples.append((sent - start, 1000 * (time.perf_counter() - sent)))
    finally:
        connection.close()
    return samples


def drain(stack: Stack, timeout_s: float = 600.0, rest_url: str = "") -> None:
    """Wait until the model answers and nothing is queued before us (a 1-token request queues behind the rest),
    through the stack's REST tier or the one at `rest_url`."""
    data = json.dumps(query_body("Hello", 1)).encode()
    request = urllib.request.Request(
        f"{rest_url or stack.rest_url}/query",
        data=data,
        headers={"Content-Type": "application/json"} | stack.auth_headers,
        method="POST",
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                answer.read()
                return
        except urllib.error.HTTPError as exc:
            # A full model queue says 429; a tier still settling, 503.
            if exc.code not in (429, 503) or time.monotonic() > deadline:
                raise
        time.sleep(0.25)
