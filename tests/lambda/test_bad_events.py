"""Property: any event, of any shape, gets an answer or a 4xx problem+json from both entry points, never an
exception or a 5xx (the handlers called directly, against a local Bedrock with the instant model)."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lambdallm.local_cloud.server import function_config, load_functions, running_local_cloud
from lambdallm.settings import CloudSettings
from tests.bad_input import FUZZ, json_bodies

_conftest = importlib.import_module("tests.lambda.conftest")  # `lambda` is a keyword: no import statement
FakeContext, load_event = _conftest.FakeContext, _conftest.load_event
STREAM_SEPARATOR = b"\0" * 8

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)
_headers = st.one_of(
    _json,
    st.dictionaries(st.sampled_from(["X-Request-ID", "x-request-id", "Content-Type", "Accept"]), _json, max_size=2),
)


@st.composite
def _body(draw: st.DrawFn) -> dict[str, Any]:
    raw = draw(json_bodies)
    if draw(st.booleans()):
        return {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    return {"body": raw.decode("utf-8", "surrogateescape"), "isBase64Encoded": draw(_json)}


events = st.one_of(
    _json,
    st.builds(lambda body: load_event("query.json") | body, _body()),
    st.builds(
        lambda changes: load_event("query.json") | changes,
        st.fixed_dictionaries(
            {}, optional={"headers": _headers, "multiValueHeaders": _headers, "body": _json, "isBase64Encoded": _json}
        ),
    ),
)


@pytest.fixture(scope="module")
def handlers() -> Iterator[dict[str, Any]]:
    """Both entry points, loaded as a cold start would, with the SDK on a local Bedrock (instant model)."""
    settings = CloudSettings(host="127.0.0.1", apigw_port=0, bedrock_port=0, engine="instant")
    with running_local_cloud(settings) as cloud:
        yield load_functions(function_config(settings, cloud.bedrock_url))


def _assert_answer_or_problem(status: int, headers: Any, body: bytes) -> None:
    assert status == 200 or 400 <= status < 500, (status, body[:300])
    if status >= 400:
        assert headers["Content-Type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == status
        assert problem["detail"]


@FUZZ
@given(event=events)
@example(event=["not", "an", "object"])
@example(event=load_event("query.json") | {"headers": ["x-request-id"]})  # was an AttributeError
@example(event=load_event("query.json") | {"body": '{"prompt":"\\ud800","max_tokens":5}'})  # was a 502
@example(event=load_event("query.json") | {"body": "[" * 5000 + "]" * 5000})  # was a 502 (RecursionError)
@example(event=load_event("query.json") | {"body": {"prompt": "Hi"}})
def test_any_event_is_an_answer_or_a_problem(handlers: dict[str, Any], event: Any) -> None:
    answer = handlers["QueryFunction"](event, FakeContext())

    _assert_answer_or_problem(answer["statusCode"], answer["headers"], answer["body"].encode())


@FUZZ
@given(event=events)
@example(event=None)
@example(event=load_event("query.json") | {"headers": "x-request-id: 1"})
@example(event=load_event("query.json") | {"body": '{"prompt":"Hi","max_tokens":5,"temperature":NaN}'})
def test_any_event_is_a_stream_or_a_problem(handlers: dict[str, Any], event: Any) -> None:
    written = b"".join(handlers["QueryStreamFunction"](event, FakeContext()))

    metadata, _, body = written.partition(STREAM_SEPARATOR)
    head = json.loads(metadata)
    _assert_answer_or_problem(head["statusCode"], head["headers"], body)
