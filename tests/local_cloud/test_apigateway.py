"""The local API Gateway: proxy events to the real handler, request validation from the spec, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from lambdallm.http_protocol import ProblemHttpProtocol
from lambdallm.local_cloud.apigateway import ApiGateway
from lambdallm.local_cloud.server import LocalCloud, _server, running_local_cloud
from tests.fakes.raw_http import build_request, send_raw
from tests.local_cloud.conftest import GatedEngine, settings


def post(cloud: LocalCloud, body: Any, path: str = "/query", **headers: str) -> tuple[int, Any, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        cloud.apigw_url + path, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.load(exc)


def test_a_query_goes_through_the_lambda_to_bedrock(instant_cloud: LocalCloud) -> None:
    status, headers, body = post(
        instant_cloud, {"prompt": "alpha beta gamma", "max_tokens": 2}, **{"X-Request-ID": "r1"}
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == "r1"
    assert body == {
        "text": "alpha beta",
        "model": "amazon.titan-text-premier-v1:0",
        "input_tokens": 3,
        "output_tokens": 2,
        "finish_reason": "length",
        "request_id": "r1",
    }


def test_invocations_in_flight_together_each_keep_their_bedrock_connection(caplog: pytest.LogCaptureFixture) -> None:
    # 32 invocations wait on the model at once; each connection goes back to the function's pool afterwards,
    # none is thrown away (urllib3 warns when it must, and the next call pays for a new connection).
    engine = GatedEngine(slots=32)
    with running_local_cloud(settings(queue_size=32), engine=engine) as cloud, ThreadPoolExecutor(32) as pool:
        calls = [pool.submit(post, cloud, {"prompt": f"call {n}", "max_tokens": 2}) for n in range(32)]
        deadline = time.monotonic() + 30
        while len(engine.prompts) < 32 and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.gate.set()
        statuses = [call.result()[0] for call in calls]
    assert statuses == [200] * 32
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "pool" in r.getMessage()]


def test_a_stop_sequence_finishes_with_stop(instant_cloud: LocalCloud) -> None:
    status, _, body = post(instant_cloud, {"prompt": "a b END c", "max_tokens": 8, "stop_sequences": ["END"]})
    assert (status, body["text"], body["finish_reason"]) == (200, "a b ", "stop")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens: must be at least 1"),
        ({"prompt": "hi"}, "max_tokens: required"),
        ({"prompt": "hi", "max_tokens": 2, "maxTokens": 2}, "maxTokens: unknown field"),
        ({"prompt": "hi", "max_tokens": 2, "temperature": 3}, "temperature: must be at most 1"),
        ({"prompt": "secret" * 6000, "max_tokens": 2}, "prompt: must be at most 32000 characters"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_the_gateway_validates_the_body_like_api_gateway(instant_cloud: LocalCloud, body: Any, detail: str) -> None:
    status, headers, problem = post(instant_cloud, body)
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert detail in problem["detail"]


def test_an_accept_the_function_cannot_meet_is_406(instant_cloud: LocalCloud) -> None:
    # API Gateway passes Accept through a proxy integration: the function refuses it, here as in AWS.
    query = {"prompt": "alpha beta", "max_tokens": 2}
    refused = post(instant_cloud, query, Accept="text/html, application/xml;q=0.9")
    answered = post(instant_cloud, query, Accept="text/html, application/json;q=0.5")

    assert (refused[0], refused[1]["Content-Type"]) == (406, "application/problem+json")
    assert refused[2]["detail"] == "accept: must allow application/json"
    assert (answered[0], answered[2]["text"]) == (200, "alpha beta")


def test_a_400_never_echoes_the_rejected_value(instant_cloud: LocalCloud) -> None:
    status, _, problem = post(instant_cloud, {"prompt": "secret" * 6000, "max_tokens": 2})
    assert status == 400
    assert "secret" not in json.dumps(problem)


def raw_post(port: int, path: str, head: str, body: bytes) -> tuple[int, bytes]:
    """POST over a plain socket, sending only `body` (a server that refuses early may close before more)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n{head}\r\n".encode())
        sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            if not (data := sock.recv(65536)):
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), answer.split(b"\r\n\r\n", 1)[-1]


def test_a_body_over_lambdas_payload_limit_is_413(instant_cloud: LocalCloud) -> None:
    from lambdallm.local_cloud.apigateway import MAX_BODY_BYTES

    port = int(instant_cloud.apigw_url.rsplit(":", 1)[1])
    sized = raw_post(port, "/query", f"Content-Length: {MAX_BODY_BYTES + 1}\r\n", b"")
    chunk = b"x" * (1024 * 1024)
    chunks = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    chunked = raw_post(port, "/query", "Transfer-Encoding: chunked\r\n", chunks * 7)
    for status, body in (sized, chunked):
        assert status == 413
        assert str(MAX_BODY_BYTES) in json.loads(body)["detail"]


def test_a_small_chunked_body_goes_through(instant_cloud: LocalCloud) -> None:
    def chunks(*parts: bytes) -> Any:
        yield from parts

    with httpx.Client(base_url=instant_cloud.apigw_url, timeout=30) as client:
        small = client.post("/query", content=chunks(b'{"prompt": "a b c",', b' "max_tokens": 2}'))
    assert (small.status_code, small.json()["text"]) == (200, "a b")


def test_an_unknown_path_is_404_and_a_wrong_method_405(instant_cloud: LocalCloud) -> None:
    assert post(instant_cloud, {}, path="/nope")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(instant_cloud.apigw_url + "/query", timeout=10)
    assert caught.value.code == 405
    assert caught.value.headers["Allow"] == "POST"
    assert json.load(caught.value)["status"] == 405


def event_seen(**overrides: Any) -> tuple[dict[str, Any], Any]:
    seen: dict[str, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.update(event=event, context=context)
        return {"statusCode": 201, "headers": {"X-Test": "yes"}, "body": "ok", "isBase64Encoded": False}

    return seen, ApiGateway({"QueryFunction": handler}, timeout_s=5, **overrides)


async def test_the_handler_gets_a_real_proxy_event_and_context() -> None:
    seen, gateway = event_seen()
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/query?x=1", json={"prompt": "p", "max_tokens": 1}, headers={"X-Request-ID": "r9"}
        )
    gateway.close()
    assert (response.status_code, response.text, response.headers["X-Test"]) == (201, "ok", "yes")
    event, context = seen["event"], seen["context"]
    assert (event["httpMethod"], event["path"], event["resource"]) == ("POST", "/query", "/query")
    assert event["headers"]["x-request-id"] == "r9"
    assert event["multiValueHeaders"]["x-request-id"] == ["r9"]
    assert event["queryStringParameters"] == {"x": "1"}
    assert json.loads(event["body"]) == {"prompt": "p", "max_tokens": 1}
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["resourcePath"] == "/query"
    assert event["requestContext"]["identity"]["sourceIp"]
    assert response.headers["x-amzn-RequestId"] == event["requestContext"]["requestId"]
    assert context.function_name == "QueryFunction"
    assert 0 < context.get_remaining_time_in_millis() <= 5000


async def test_a_slow_function_times_out_with_504() -> None:
    release = threading.Event()

    def stuck(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(10)
        return {"statusCode": 200, "body": ""}

    gateway = ApiGateway({"QueryFunction": stuck}, timeout_s=0.2)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
            response = await client.post("/query", json={"prompt": "p", "max_tokens": 1})
    finally:
        release.set()
        gateway.close()
    assert response.status_code == 504
    assert "did not answer within 0.2 s" in response.json()["detail"]


def test_each_integration_is_the_one_of_the_spec() -> None:
    gateway = ApiGateway({}, timeout_s=600)
    gateway.close()
    query, stream = gateway.routes["/query"]["POST"], gateway.routes["/query/stream"]["POST"]
    assert (query.function, query.streaming, query.timeout_s) == ("QueryFunction", False, 29.0)
    assert (stream.function, stream.streaming, stream.timeout_s) == ("QueryStreamFunction", True, 900.0)


@pytest.mark.parametrize("result", [None, {"body": "no status"}, {"statusCode": "x"}, RuntimeError("boom")])
async def test_a_failing_function_is_a_502_without_its_internals(result: Any) -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    gateway = ApiGateway({"QueryFunction": broken}, timeout_s=5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
        response = await client.post("/query", json={"prompt": "p", "max_tokens": 1})
    gateway.close()
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert "boom" not in response.text


@pytest.mark.model
def test_end_to_end_real_text_with_token_counts(model_cloud: LocalCloud) -> None:
    status, headers, body = post(model_cloud, {"prompt": "The sky is", "max_tokens": 3, "temperature": 0})
    assert status == 200
    assert body["text"].strip()
    assert body["input_tokens"] > 3  # "The sky is" as a user turn of SmolLM2's chat template
    assert body["output_tokens"] == 3
    assert body["finish_reason"] == "length"
    assert headers["X-Request-ID"] == body["request_id"]


@pytest.mark.parametrize(
    ("server", "method", "path"),
    [
        ("apigw", "POST", "/query/"),
        ("apigw", "POST", "/query/stream/"),
        ("bedrock", "GET", "/ping/"),
        ("bedrock", "POST", "/model/amazon.titan-text-premier-v1:0/invoke/"),
        ("bedrock", "POST", "/model/amazon.titan-text-premier-v1:0/converse-stream/"),
    ],
)
def test_a_trailing_slash_is_not_found_never_a_redirect_to_the_host_header(
    instant_cloud: LocalCloud, server: str, method: str, path: str
) -> None:
    url = instant_cloud.apigw_url if server == "apigw" else instant_cloud.bedrock_url
    port = int(url.rsplit(":", 1)[1])
    body = b'{"prompt": "Hi", "max_tokens": 5}' if method == "POST" else b""
    headers = [("Content-Type", "application/json")]

    answer = send_raw(port, build_request(method, path, headers, body, port, host="evil.example"))

    assert answer.status == 404, answer.headers
    assert "location" not in answer.headers


async def test_a_streaming_function_that_writes_no_metadata_in_time_is_a_504_and_is_stopped() -> None:
    release, stopped = threading.Event(), threading.Event()

    def silent(event: dict[str, Any], context: Any) -> Iterator[bytes]:
        try:
            release.wait(10)
            yield b'{"statusCode": 200}' + b"\0" * 8  # too late: the gateway has answered
            yield b"never read"
        finally:
            stopped.set()

    gateway = ApiGateway({"QueryStreamFunction": silent}, timeout_s=0.2)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
            response = await client.post(
                "/query/stream", json={"prompt": "p", "max_tokens": 1}, headers={"Accept": "application/x-ndjson"}
            )
    finally:
        release.set()
    assert response.status_code == 504
    assert "did not answer within 0.2 s" in response.json()["detail"]
    assert stopped.wait(5)  # the function was closed at its next piece
    gateway.close()


async def test_the_events_source_ip_is_the_peers_whatever_x_forwarded_for_says() -> None:
    seen: dict[str, Any] = {}

    def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["event"] = event
        return {"statusCode": 200, "body": "ok"}

    gateway = ApiGateway({"QueryFunction": record}, timeout_s=5)
    server = _server(gateway, 1, settings(), ProblemHttpProtocol)  # the local cloud's own uvicorn setup
    sock = socket.create_server(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve([sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            response = await client.post(
                "/query", json={"prompt": "p", "max_tokens": 1}, headers={"X-Forwarded-For": "203.0.113.9"}
            )
    finally:
        server.should_exit = True
        await serving
        sock.close()
        gateway.close()
    assert response.status_code == 200
    assert seen["event"]["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
