"""Property: whatever bytes, headers, method and media type a client sends, the local API Gateway (instant model
behind it) answers an answer or a 4xx problem+json, and the local Bedrock an answer or a 4xx Bedrock error (JSON
`message`, `x-amzn-errortype`), never a 5xx or a text/plain error."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lambdallm.local_cloud import apigateway, bedrock_errors
from lambdallm.local_cloud.server import LocalCloud
from tests.bad_input import (
    FUZZ,
    assert_bedrock_error_or_answer,
    assert_problem_or_answer,
    bodies_for,
    good_prompt,
    headers,
    json_bodies,
    media_types,
    methods,
)
from tests.fakes.raw_http import RawAnswer, build_request, send_raw, send_whole

PATHS = ["/query", "/query", "/query/stream", "/query/stream", "/nowhere", "/query/"]
TITAN = "/model/amazon.titan-text-premier-v1%3A0/"
CONVERSE = "/model/google.gemma-3-270m/"  # a model that takes a system prompt
titan_bodies = bodies_for(
    ["inputText", "textGenerationConfig", "maxTokenCount", "temperature", "topP", "stopSequences"],
    st.builds(
        lambda prompt, tokens: f'{{"inputText":{prompt},"textGenerationConfig":{{"maxTokenCount":{tokens}}}}}',
        good_prompt,
        st.integers(1, 20),
    ),
)
converse_bodies = bodies_for(
    ["messages", "system", "inferenceConfig", "role", "content", "text", "maxTokens", "temperature", "topP"],
    st.builds(
        lambda prompt, tokens: (
            f'{{"messages":[{{"role":"user","content":[{{"text":{prompt}}}]}}],"inferenceConfig":{{"maxTokens":{tokens}}}}}'
        ),
        good_prompt,
        st.integers(1, 20),
    ),
)


@FUZZ
@given(path=st.sampled_from(["/query", "/query/stream"]), body=json_bodies, media_type=media_types, extra=headers)
@example(path="/query", body=b'{"prompt":"Hi","max_tokens":5,"max_tokens":6}', media_type="application/json", extra=[])
@example(path="/query/stream", body=b'{"prompt":"\\ud800","max_tokens":5}', media_type="application/json", extra=[])
def test_any_body_is_an_answer_or_a_problem(instant_cloud: LocalCloud, path, body, media_type, extra) -> None:
    port = instant_cloud.apigw_port

    answer = send_raw(port, build_request("POST", path, [("Content-Type", media_type), *extra], body, port))

    assert_problem_or_answer(answer, "POST")


@FUZZ
@given(method=methods, path=st.sampled_from(PATHS), body=json_bodies, extra=headers)
@example(method="FOO", path="/query", body=b"{}", extra=[])  # uvicorn's own text/plain 400
def test_any_method_and_path_is_an_answer_or_a_problem(instant_cloud: LocalCloud, method, path, body, extra) -> None:
    port = instant_cloud.apigw_port

    answer = send_raw(port, build_request(method, path, [("Content-Type", "application/json"), *extra], body, port))

    assert_problem_or_answer(answer, method)


def post_to_bedrock(cloud: LocalCloud, path: str, body: bytes, extra: list[tuple[str, str]]) -> RawAnswer:
    request = build_request("POST", path, [("Content-Type", "application/json"), *extra], body, cloud.bedrock_port)
    return send_raw(cloud.bedrock_port, request)


@FUZZ
@given(operation=st.sampled_from(["invoke", "invoke-with-response-stream"]), body=titan_bodies, extra=headers)
@example(operation="invoke", body=b"{}", extra=[("Content-Length", "abc")])  # uvicorn's own text/plain 400
@example(operation="invoke", body=b"[" * 100_000 + b"]" * 100_000, extra=[])  # past Python's recursion limit
@example(operation="invoke", body=b'{"inputText":"\\ud800"}', extra=[])  # a lone surrogate, echoed
@example(operation="invoke-with-response-stream", body=b'{"inputText":"\\udfff"}', extra=[])
def test_any_titan_body_is_an_answer_or_a_bedrock_error(instant_cloud: LocalCloud, operation, body, extra) -> None:
    assert_bedrock_error_or_answer(post_to_bedrock(instant_cloud, TITAN + operation, body, extra), "POST")


@FUZZ
@given(operation=st.sampled_from(["converse", "converse-stream"]), body=converse_bodies, extra=headers)
@example(operation="converse", body=b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}", extra=[])
@example(operation="converse-stream", body=b'{"messages":[{"role":"user","content":[{"text":"\\ud800"}]}]}', extra=[])
def test_any_converse_body_is_an_answer_or_a_bedrock_error(instant_cloud: LocalCloud, operation, body, extra) -> None:
    assert_bedrock_error_or_answer(post_to_bedrock(instant_cloud, CONVERSE + operation, body, extra), "POST")


@pytest.mark.parametrize("server", ["API Gateway", "Bedrock"])
def test_a_client_that_hangs_up_mid_body_is_dropped_without_an_error_in_the_log(
    instant_cloud: LocalCloud, caplog: pytest.LogCaptureFixture, server: str
) -> None:
    port, path = (
        (instant_cloud.apigw_port, "/query")
        if server == "API Gateway"
        else (instant_cloud.bedrock_port, TITAN + "invoke")
    )
    promised = [("Content-Type", "application/json"), ("Content-Length", "100")]

    gone = send_raw(port, build_request("POST", path, promised, b'{"prompt": "Hi', port))
    answer = send_raw(port, build_request("POST", path, [("Content-Type", "application/json")], b"{}", port))

    assert (gone.status, answer.status) == (0, 400)  # the server serves on
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("server", ["API Gateway", "Bedrock"])
def test_a_body_far_over_the_limit_sent_whole_gets_the_refusal(instant_cloud: LocalCloud, server: str) -> None:
    # Without `Expect: 100-continue` the client writes all of its body while the server has already refused it
    # on its Content-Length: the server must read on (lingering close) or the client sees a reset, not the answer.
    if server == "API Gateway":
        port, path, limit = instant_cloud.apigw_port, "/query", apigateway.MAX_BODY_BYTES
    else:
        port, path, limit = instant_cloud.bedrock_port, TITAN + "invoke", bedrock_errors.MAX_BODY_BYTES
    body = b"x" * (limit + 4 * 1024 * 1024)
    request = build_request("POST", path, [("Content-Type", "application/json")], body, port)

    for _ in range(5):
        answer = send_whole(port, request)

        if server == "API Gateway":
            assert (answer.status, answer.media_type) == (413, "application/problem+json")
            assert str(limit) in json.loads(answer.body)["detail"]
        else:  # Bedrock refuses an oversized body as a ValidationException
            assert (answer.status, answer.headers["x-amzn-errortype"]) == (400, "ValidationException:")
            assert str(limit) in json.loads(answer.body)["message"]
