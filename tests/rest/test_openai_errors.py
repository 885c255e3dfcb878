"""The /v1 boundary's table: an HTTP problem -> OpenAI's error object (type, code, and the param its detail names)."""

import pytest

from lambdallm.rest.openai_errors import from_problem, openai_error


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "invalid_request_error", None),
        (401, "invalid_request_error", "invalid_api_key"),
        (404, "invalid_request_error", "model_not_found"),
        (413, "invalid_request_error", None),
        (415, "invalid_request_error", None),
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
        (502, "server_error", None),
        (503, "server_error", None),
        (504, "server_error", None),
    ],
)
def test_each_status_has_openais_type_and_code(status, kind, code):
    error = openai_error(status, "something")["error"]
    assert (error["type"], error["code"]) == (kind, code)


def test_an_unknown_url_and_a_missing_key_have_no_code():
    assert openai_error(404, "Not Found", routed=False)["error"]["code"] is None
    assert openai_error(401, "No authorization token provided", key_sent=False)["error"]["code"] is None


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("messages[2].role: must be assistant", "messages[2].role"),
        ("n: must be at most 1", "n"),
        ("stream_options.include_usage: must be of type boolean", "stream_options.include_usage"),
        ("messages[0].content[1].text: must be of type string", "messages[0].content[1].text"),
        ("request body exceeds 10 bytes", None),
        ("content-type: required, expected ['application/json']", None),
        ("the call to the gRPC proxy failed: INTERNAL", None),
    ],
)
def test_the_param_is_the_field_a_detail_starts_with(message, param):
    assert openai_error(400, message)["error"]["param"] == param


def test_a_problem_becomes_its_detail_or_its_title():
    assert from_problem({"status": 429, "title": "Too Many Requests"})["error"]["message"] == "Too Many Requests"
    error = from_problem({"status": 400, "title": "Bad Request", "detail": "n: must be at most 1"})["error"]
    assert (error["message"], error["param"]) == ("n: must be at most 1", "n")
