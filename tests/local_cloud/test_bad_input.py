"""Property: whatever bytes, headers, method and media type a client sends, the local API Gateway (instant model
behind it) answers an answer or a 4xx problem+json, never a 5xx or a text/plain error."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from lambdallm.local_cloud.server import LocalCloud
from tests.bad_input import FUZZ, assert_problem_or_answer, headers, json_bodies, media_types, methods
from tests.fakes.raw_http import build_request, send_raw

PATHS = ["/query", "/query", "/query/stream", "/query/stream", "/nowhere", "/query/"]


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
