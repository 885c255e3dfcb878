"""The local API Gateway: proxy events to the real handler, request validation from the spec, failures."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import httpx
import pytest

from lambdallm.local_cloud.apigateway import ApiGateway
from lambdallm.local_cloud.server import LocalCloud


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


def test_a_stop_sequence_finishes_with_stop(instant_cloud: LocalCloud) -> None:
    status, _, body = post(instant_cloud, {"prompt": "a b END c", "max_tokens": 8, "stop_sequences": ["END"]})
    assert (status, body["text"], body["finish_reason"]) == (200, "a b ", "stop")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens: 0 is less than the minimum of 1"),
        ({"prompt": "hi"}, "'max_tokens' is a required property"),
        ({"prompt": "hi", "max_tokens": 2, "maxTokens": 2}, "'maxTokens' was unexpected"),
        ({"prompt": "hi", "max_tokens": 2, "temperature": 3}, "temperature: 3 is greater than the maximum of 1"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_the_gateway_validates_the_body_like_api_gateway(instant_cloud: LocalCloud, body: Any, detail: str) -> None:
    status, headers, problem = post(instant_cloud, body)
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert detail in problem["detail"]


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

    return seen, ApiGateway(handler, timeout_s=5, **overrides)


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

    gateway = ApiGateway(stuck, timeout_s=0.2)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
            response = await client.post("/query", json={"prompt": "p", "max_tokens": 1})
    finally:
        release.set()
        gateway.close()
    assert response.status_code == 504
    assert "timed out" in response.json()["detail"]


@pytest.mark.parametrize("result", [None, {"body": "no status"}, {"statusCode": "x"}, RuntimeError("boom")])
async def test_a_failing_function_is_a_502_without_its_internals(result: Any) -> None:
    def broken(event: dict[str, Any], context: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    gateway = ApiGateway(broken, timeout_s=5)
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
    assert body["input_tokens"] == 3  # "The sky is": SmolLM2 adds no <bos>
    assert body["output_tokens"] == 3
    assert body["finish_reason"] == "length"
    assert headers["X-Request-ID"] == body["request_id"]
