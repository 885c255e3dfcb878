"""Property: whatever bytes, headers, method and media type a client sends, the REST tier answers an answer or
a 4xx problem+json, never a 5xx (a real REST tier over a real proxy, in front of the fake backend)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lambdallm.rest.app import SPEC
from lambdallm.rest.body_limit import largest_request_bytes
from tests.bad_input import FUZZ, assert_problem_or_answer, headers, json_bodies, media_types, methods
from tests.fakes.raw_http import build_request, send_raw, send_whole
from tests.fakes.stack import AUTHORIZATION

BODY_LIMIT = largest_request_bytes(SPEC)  # the default max_body_bytes
HOSTILE_HOST = "evil.example"  # a client chooses the Host header: nothing the tier sends may be built from it
PATHS = ["/query", "/query", "/query", "/health", "/ready", "/nowhere", "/query/", "/ui/../query"]


def _port(rest: str) -> int:
    return int(rest.rsplit(":", 1)[1])


# Bodies the strict JSON reader must refuse (400), each well within max_body_bytes, so they reach it.
STRICT_JSON_REJECTIONS = {
    "deep nesting": (b"[" * 100 + b"]" * 100, "nested deeper than 64 levels"),
    "deep objects": (b'{"a":' * 100 + b"1" + b"}" * 100, "nested deeper than 64 levels"),
    "huge integer": (b'{"prompt":"Hi","max_tokens":' + b"1" * 500 + b"}", "more than 400 digits"),
    "lone surrogate": (b'{"prompt":"\\ud800","max_tokens":5}', "lone surrogate"),
    "duplicate key": (b'{"prompt":"Hi","prompt":"Ho","max_tokens":5}', "prompt: duplicate field"),
    "NaN": (b'{"prompt":"Hi","max_tokens":5,"temperature":NaN}', "NaN is not a JSON number"),
    "past a double": (b'{"prompt":"Hi","max_tokens":5,"temperature":1e999}', "too large for a double"),
    "not UTF-8": (b'{"prompt":"\xff","max_tokens":5}', "not UTF-8"),
}


def _examples(**more):  # type: ignore[no-untyped-def]
    """Hypothesis examples of (body, media_type) and `more`: what once was a 500, and every strict JSON case."""
    bodies = [
        (b"[" * 5000 + b"]" * 5000, "application/json"),  # was a 500: RecursionError (now a 413: over the limit)
        (b'{"prompt":"Hi","max_tokens":' + b"1" * 5000 + b"}", "application/json"),
        (b'{"prompt":"\\ud800","max_tokens":5}', "application/json"),  # was a 500 at gRPC
        (b'{"prompt":"Hi","max_tokens":5}', "APPLICATION/JSON"),  # was a 500: the body taken for bytes
        *((body, "application/json") for body, _ in STRICT_JSON_REJECTIONS.values()),
    ]

    def decorate(test):  # type: ignore[no-untyped-def]
        for body, media_type in bodies:
            test = example(body=body, media_type=media_type, **more)(test)
        return test

    return decorate


@FUZZ
@given(body=json_bodies, media_type=media_types, extra=headers)
@example(body=b'{"prompt":"Hi","max_tokens":5}', media_type="application/json", extra=[("Content-Encoding", "gzip")])
@example(body=b'{"prompt":"Hi","max_tokens":5}', media_type="application/json", extra=[("Accept", "text/event-stream")])
@_examples(extra=[])
async def test_any_body_to_post_query_is_an_answer_or_a_problem(rest, body, media_type, extra) -> None:
    # With the API key, so that every body reaches the JSON reader, the validators and the proxy.
    head = [("Content-Type", media_type), *AUTHORIZATION.items(), *extra]
    request = build_request("POST", "/query", head, body, _port(rest))

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert_problem_or_answer(answer, "POST")


@FUZZ
@given(body=json_bodies, media_type=media_types)
@_examples()
async def test_without_the_api_key_any_body_is_a_401_and_reaches_nothing(rest, fake, body, media_type) -> None:
    request = build_request("POST", "/query", [("Content-Type", media_type)], body, _port(rest))

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert_problem_or_answer(answer, "POST")
    # A body over max_body_bytes is refused on its Content-Length, which is no reading either.
    assert answer.status == (413 if len(body) > BODY_LIMIT else 401), (answer.status, answer.body[:300])
    assert [body for _, body in fake.requests if body != {}] == []  # readiness probes aside, nothing went on


@pytest.mark.parametrize(("body", "detail"), STRICT_JSON_REJECTIONS.values(), ids=STRICT_JSON_REJECTIONS)
async def test_strict_json_refusals_reach_an_authenticated_client_as_400_naming_the_cause(rest, fake, body, detail):
    head = [("Content-Type", "application/json"), *AUTHORIZATION.items()]

    answer = await asyncio.to_thread(send_raw, _port(rest), build_request("POST", "/query", head, body, _port(rest)))

    assert (answer.status, answer.media_type) == (400, "application/problem+json"), answer.body[:300]
    assert detail in json.loads(answer.body)["detail"]
    assert [body for _, body in fake.requests if body != {}] == []


@FUZZ
@given(method=methods, path=st.sampled_from(PATHS), body=json_bodies, extra=headers)
@example(method="FOO", path="/query", body=b"{}", extra=[])  # uvicorn's own text/plain 400
@example(method="POST", path="/query", body=b"{}", extra=[("Content-Length", "abc")])
async def test_any_method_and_path_is_an_answer_or_a_problem(rest, method, path, body, extra) -> None:
    request = build_request(method, path, [("Content-Type", "application/json"), *extra], body, _port(rest))

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert_problem_or_answer(answer, method)


async def test_a_client_that_hangs_up_mid_body_is_dropped_without_an_error_in_the_log(rest, caplog) -> None:
    port = _port(rest)
    # With the key, so that the tier waits for the body: without it, the 401 may come back before the hang-up.
    promised = [("Content-Type", "application/json"), ("Content-Length", "100"), *AUTHORIZATION.items()]

    gone = await asyncio.to_thread(send_raw, port, build_request("POST", "/query", promised, b'{"prompt": "Hi', port))
    answer = await asyncio.to_thread(send_raw, port, build_request("GET", "/health", [], b"", port))

    assert (gone.status, answer.status) == (0, 200)  # the tier serves on
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_a_body_far_over_the_limit_sent_whole_gets_the_413(rest) -> None:
    # Without `Expect: 100-continue` the client writes its 4 MB while the tier has already refused it on its
    # Content-Length: the tier must read on (lingering close) or the client sees a reset instead of the 413.
    port = _port(rest)
    head = [("Content-Type", "application/json"), *AUTHORIZATION.items()]
    closing = build_request("POST", "/query", head, b"x" * (4 * 1024 * 1024), port)
    keep_alive = closing.replace(b"\r\nConnection: close", b"", 1)

    for request in [closing, keep_alive] * 5:
        answer = await asyncio.to_thread(send_whole, port, request)

        assert (answer.status, answer.media_type) == (413, "application/problem+json")
        assert str(largest_request_bytes(SPEC)) in json.loads(answer.body)["detail"]
        assert answer.headers["connection"] == "close"  # the rest of the body is not read as a next request


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
@pytest.mark.parametrize("content_type", [[], [("Content-Type", "")]], ids=["missing", "empty"])
async def test_a_body_without_a_media_type_is_a_415_problem(rest, fake, caplog, content_type, accept) -> None:
    headers = [*content_type, ("Accept", accept), *AUTHORIZATION.items()]
    request = build_request("POST", "/query", headers, b'{"prompt": "Hi", "max_tokens": 5}', _port(rest))

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert (answer.status, answer.media_type) == (415, "application/problem+json"), answer.body
    detail = json.loads(answer.body)["detail"]
    assert "content-type" in detail.lower()
    if not content_type:  # ours, not Connexion's: it names the field first
        assert detail == "content-type: required, expected ['application/json']"
    assert fake.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/query/"), ("GET", "/health/"), ("GET", "/ready/"), ("GET", "/openapi.json/")]
)
async def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(rest, method, path) -> None:
    headers = [("Content-Type", "application/json"), *AUTHORIZATION.items()]
    body = b'{"prompt": "Hi", "max_tokens": 5}' if method == "POST" else b""
    request = build_request(method, path, headers, body, _port(rest), host=HOSTILE_HOST)

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert (answer.status, answer.media_type) == (404, "application/problem+json"), answer.headers
    assert "location" not in answer.headers


async def test_the_one_redirect_swagger_ui_makes_is_relative(rest) -> None:
    request = build_request("GET", "/ui", [], b"", _port(rest), host=HOSTILE_HOST)

    answer = await asyncio.to_thread(send_raw, _port(rest), request)

    assert (answer.status, answer.headers["location"]) == (307, "/ui/")
