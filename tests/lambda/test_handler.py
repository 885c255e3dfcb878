"""The Lambda handler against a stubbed Bedrock: the answer it builds and every failure it maps."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from llm_lambda import bedrock, handler
from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function
from llm_wire.errors import BackendError
from llm_wire.timing import parse_timing


def titan(text: str = " Paris.", reason: str = "FINISH", tokens: int = 3) -> dict[str, Any]:
    payload = json.dumps(
        {
            "inputTextTokenCount": 6,
            "results": [{"tokenCount": tokens, "outputText": text, "completionReason": reason}],
        }
    ).encode()
    return {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"}


@pytest.fixture
def call(function: Function, context: Any) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]]]:
    return lambda event: answer(function.lambda_handler(event, context))


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_answer_carries_text_tokens_and_the_callers_request_id(call: Any, event: Any, stubbed: Stubber) -> None:
    expected = {
        "modelId": FunctionConfig.model_id,
        "body": json.dumps(
            {
                "inputText": "The capital of France is",
                "textGenerationConfig": {"maxTokenCount": 4, "temperature": 0.0},
            }
        ),
        "contentType": "application/json",
        "accept": "application/json",
    }
    stubbed.add_response("invoke_model", titan(), expected)
    status, body, headers = call(event("query.json"))
    assert status == 200
    assert body == {
        "text": " Paris.",
        "model": "amazon.titan-text-premier-v1:0",
        "input_tokens": 6,
        "output_tokens": 3,
        "finish_reason": "stop",
        "request_id": "req-query-1",
    }
    assert headers.pop("Server-Timing").startswith("backend;dur=")  # Bedrock said no latency: no model entry
    assert headers == {"Content-Type": "application/json", "X-Request-ID": "req-query-1"}


def test_the_answer_s_server_timing_has_bedrock_s_latency_within_the_function_s(
    call: Any, event: Any, stubbed: Stubber
) -> None:
    latency = {"ResponseMetadata": {"HTTPHeaders": {"x-amzn-bedrock-invocation-latency": "250"}}}
    stubbed.add_response("invoke_model", titan() | latency)
    status, _, headers = call(event("query.json"))
    assert status == 200
    timing = parse_timing(headers["Server-Timing"])
    assert list(timing) == ["backend", "model"] and timing["model"] == 250.0


def test_without_a_request_id_header_the_lambda_request_id_is_used(call: Any, event: Any, stubbed: Stubber) -> None:
    stubbed.add_response("invoke_model", titan(), {"modelId": ANY, "body": ANY, "contentType": ANY, "accept": ANY})
    status, body, headers = call(event("query_base64.json"))
    assert status == 200
    assert body["request_id"] == headers["X-Request-ID"] == "aws-req-0001"


@pytest.mark.parametrize("sent", ["x" * 129, "two words", "line\nbreak", "é"])
def test_a_request_id_the_policy_refuses_is_replaced_by_the_lambda_request_id(
    call: Any, event: Any, stubbed: Stubber, sent: str
) -> None:
    stubbed.add_response("invoke_model", titan(), {"modelId": ANY, "body": ANY, "contentType": ANY, "accept": ANY})
    query = event("query.json")
    status, body, headers = call(query | {"headers": query["headers"] | {"X-Request-ID": sent}})
    assert status == 200
    assert body["request_id"] == headers["X-Request-ID"] == "aws-req-0001"


def test_stop_sequences_and_sampling_reach_titan(call: Any, event: Any, stubbed: Stubber) -> None:
    config = {"maxTokenCount": 8, "temperature": 0.5, "topP": 0.9, "stopSequences": ["three"]}
    body = {"prompt": "one two", "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["three"]}
    stubbed.add_response(
        "invoke_model",
        titan(reason="STOP_CRITERIA_MET"),
        {"modelId": ANY, "body": json.dumps({"inputText": "one two", "textGenerationConfig": config})}
        | {"contentType": ANY, "accept": ANY},
    )
    assert call(event("query.json", body))[1]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("FINISH", "stop"),
        ("FINISHED", "stop"),
        ("STOP_CRITERIA_MET", "stop"),
        ("LENGTH", "length"),
        ("CONTENT_FILTERED", "content_filter"),
    ],
)
def test_titan_completion_reasons_map_to_finish_reasons(
    call: Any, event: Any, stubbed: Stubber, reason: str, finish: str
) -> None:
    stubbed.add_response("invoke_model", titan(reason=reason))
    assert call(event("query.json"))[1]["finish_reason"] == finish


def test_an_empty_generation_with_a_real_reason_is_an_answer(call: Any, event: Any, stubbed: Stubber) -> None:
    stubbed.add_response("invoke_model", titan(text="", tokens=0))
    status, body, _ = call(event("query.json"))
    assert (status, body["text"], body["output_tokens"]) == (200, "", 0)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{}",
        b'{"results": []}',
        b'{"inputTextTokenCount": 1, "results": [{"outputText": "x"}]}',
        b'{"inputTextTokenCount": 1, "results": [{"outputText": 5, "tokenCount": 1, "completionReason": "FINISH"}]}',
        b'{"inputTextTokenCount": -1, "results": [{"outputText": "", "tokenCount": 0, "completionReason": "FINISH"}]}',
        b'{"inputTextTokenCount": 1, "results": [{"outputText": "", "tokenCount": 0, "completionReason": "WAT"}]}',
    ],
)
def test_a_malformed_bedrock_answer_is_a_bad_gateway(call: Any, event: Any, stubbed: Stubber, payload: bytes) -> None:
    body = StreamingBody(io.BytesIO(payload), len(payload))
    stubbed.add_response("invoke_model", {"body": body, "contentType": "application/json"})
    status, body, headers = call(event("query.json"))
    assert status == 502
    assert headers["Content-Type"] == "application/problem+json"
    assert body["detail"] == "the model returned a malformed answer"


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"outputText": 5, "tokenCount": 1}, "outputText int, completionReason 'FINISH'"),
        ({"outputText": "", "tokenCount": -1}, "token counts are not non-negative integers"),
    ],
)
def test_a_malformed_bedrock_answer_says_why_in_the_log(result: dict[str, Any], why: str) -> None:
    """The caller reads only "malformed answer"; the operator's log line (its traceback, exc_info) says why."""
    payload = {"inputTextTokenCount": 1, "results": [{"completionReason": "FINISH", **result}]}
    with pytest.raises(BackendError) as caught:
        bedrock.parse_titan(json.dumps(payload).encode())
    assert str(caught.value.__cause__) == why


@pytest.mark.parametrize(
    ("code", "http_status", "status", "detail"),
    [
        ("ValidationException", 400, 400, "the model rejected the request: Input is too long"),
        ("ThrottlingException", 429, 429, "the model is busy; retry later"),
        ("ServiceQuotaExceededException", 400, 429, "the model's quota is exhausted; retry later"),
        ("ModelTimeoutException", 408, 504, "the model took too long to answer"),
        ("AccessDeniedException", 403, 502, "the backend is not allowed to invoke the model"),
        ("ServiceUnavailableException", 503, 503, "the model service is unavailable; retry later"),
        ("ModelNotReadyException", 429, 503, "the model is not ready yet; retry later"),
        ("ResourceNotFoundException", 404, 502, "the model call failed"),
        ("ModelErrorException", 424, 502, "the model call failed"),
        ("InternalServerException", 500, 502, "the model call failed"),
    ],
)
def test_bedrock_errors_map_to_problems(
    call: Any, event: Any, stubbed: Stubber, code: str, http_status: int, status: int, detail: str
) -> None:
    stubbed.add_client_error("invoke_model", code, "Input is too long", http_status)
    got_status, body, headers = call(event("query.json"))
    assert got_status == status
    assert headers == {"Content-Type": "application/problem+json", "X-Request-ID": "req-query-1"}
    assert body["status"] == status
    assert body["detail"] == detail
    assert body["request_id"] == "req-query-1"
    assert body["type"] == "about:blank"
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConnectTimeoutError(endpoint_url="http://bedrock"), 503),
        (EndpointConnectionError(endpoint_url="http://bedrock"), 503),
        (ReadTimeoutError(endpoint_url="http://bedrock"), 504),
        (RuntimeError("boom at /secret/path"), 502),
    ],
)
def test_transport_failures_map_to_problems(
    function: Function, call: Any, event: Any, monkeypatch: pytest.MonkeyPatch, exc: Exception, status: int
) -> None:
    def fail(**request: Any) -> None:
        raise exc

    # Raised where botocore sends the HTTP request, after parameter validation and signing.
    function.bedrock.meta.events.register_first("before-send.bedrock-runtime.InvokeModel", fail)
    try:
        got_status, body, _ = call(event("query.json"))
    finally:
        function.bedrock.meta.events.unregister("before-send.bedrock-runtime.InvokeModel", fail)
    assert got_status == status
    assert "secret" not in body["detail"]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("query_unknown_field.json", None, "maxTokens"),
        ("query_bad_json.json", None, "not valid JSON"),
        ("query.json", {"max_tokens": 4}, "prompt"),
        ("query.json", {"prompt": "", "max_tokens": 4}, "prompt"),
        ("query.json", {"prompt": "x" * 32001, "max_tokens": 4}, "prompt"),
        ("query.json", {"prompt": "Hi"}, "max_tokens"),
        ("query.json", {"prompt": "Hi", "max_tokens": 0}, "max_tokens"),
        ("query.json", {"prompt": "Hi", "max_tokens": 3073}, "max_tokens"),
        ("query.json", {"prompt": "Hi", "max_tokens": True}, "max_tokens"),
        ("query.json", {"prompt": "Hi", "max_tokens": "4"}, "max_tokens"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "temperature": 1.5}, "temperature"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "temperature": None}, "temperature"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "top_p": "high"}, "top_p"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "stop_sequences": "stop"}, "stop_sequences"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "stop_sequences": ["a"] * 5}, "stop_sequences"),
        ("query.json", {"prompt": "Hi", "max_tokens": 4, "stop_sequences": [""]}, "stop_sequences"),
        ("query.json", ["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    call: Any, event: Any, stubbed: Stubber, name: str, body: Any, field: str
) -> None:
    status, problem, _ = call(event(name, body))
    assert status == 400
    assert field in problem["detail"]
    assert problem["title"] == "Bad Request"


def test_an_event_without_body_is_400(call: Any, event: Any, stubbed: Stubber) -> None:
    empty = event("query.json")
    empty["body"] = None
    assert call(empty)[0] == 400


def with_accept(event: dict[str, Any], *values: str) -> dict[str, Any]:
    """`event` as API Gateway passes a request whose `Accept` header field came once per value."""
    event["headers"]["Accept"] = values[-1]  # API Gateway's `headers` keeps the last of a repeated field
    event["multiValueHeaders"]["Accept"] = list(values)
    return event


@pytest.mark.parametrize(
    "accept",
    [("text/html",), ("text/event-stream",), ("application/x-ndjson",), ("application/json;q=0, */*;q=0.5",)],
)
def test_an_accept_without_json_is_406_before_bedrock(call: Any, event: Any, stubbed: Stubber, accept: Any) -> None:
    status, problem, headers = call(with_accept(event("query.json"), *accept))

    assert (status, headers["Content-Type"]) == (406, "application/problem+json")
    assert (problem["title"], problem["detail"]) == ("Not Acceptable", "accept: must allow application/json")


@pytest.mark.parametrize(
    "accept",
    [("*/*",), ("application/*",), ("text/html, application/json;q=0.1",), ("application/json", "text/html"), ("",)],
)
def test_an_accept_that_allows_json_gets_the_answer(call: Any, event: Any, stubbed: Stubber, accept: Any) -> None:
    stubbed.add_response("invoke_model", titan(), None)

    status, body, headers = call(with_accept(event("query.json"), *accept))

    assert (status, headers["Content-Type"], body["text"]) == (200, "application/json", " Paris.")


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_the_streaming_function_refuses_an_accept_without_ndjson(
    function: Function, event: Any, context: Any, stubbed: Stubber, accept: str
) -> None:
    written = b"".join(function.stream_handler(with_accept(event("query.json"), accept), context))

    metadata, _, body = written.partition(handler.STREAM_SEPARATOR)
    assert json.loads(metadata)["statusCode"] == 406
    assert json.loads(body)["detail"] == "accept: must allow application/x-ndjson"
