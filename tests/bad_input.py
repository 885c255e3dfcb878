"""Hypothesis strategies for what a hostile or broken client sends: raw JSON bodies of any shape, encodings,
media types, headers and methods; and the check every HTTP tier's answer to them must pass."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.fakes.raw_http import RawAnswer

FIELDS = ["prompt", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences"]
# Few examples per property, many properties: each tier's bad input runs in a few seconds.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

# Raw JSON tokens Python's json module writes or reads loosely: NaN and friends, numbers past a double or
# Python's 4300-digit limit, lone surrogates, control characters escaped.
_ODD_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "-" + "9" * 400, "0." + "0" * 400 + "1",
    "1E400", "5.0", "1e2", "-0", "true", "null", '"\\ud800"', '"a\\udfff"', '"\\ud83d\\ude00"', '"\\u0000"',
    '"\\/"', "[]", "{}",
]  # fmt: skip
_odd_token = st.sampled_from(_ODD_TOKENS)
_plain_value = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(lambda x: json.dumps(x)),
    st.text(max_size=40).map(json.dumps),
    st.booleans().map(json.dumps),
    st.just("null"),
)
_nested = st.integers(min_value=1, max_value=3000).flatmap(
    lambda depth: st.sampled_from([("[", "]"), ('{"a":', "}")]).map(
        lambda pair: pair[0] * depth + "1" + pair[1] * depth
    )
)


def _render(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


@st.composite
def _encoded(draw: st.DrawFn, text: str) -> bytes:
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32-be", "latin-1"]))
    body = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    if draw(st.booleans()) and body:  # cut it short, or flip a byte
        cut = draw(st.integers(0, len(body) - 1))
        body = body[:cut] if draw(st.booleans()) else body[:cut] + bytes([body[cut] ^ 0x80]) + body[cut + 1 :]
    return body


good_prompt = st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t).map(json.dumps)
"""A JSON string that is a fair prompt."""


def bodies_for(fields: list[str], valid: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Raw request bodies for an API whose objects have `fields` (at any depth) and of which `valid` draws
    well-formed requests: valid, odd, pathological, mis-encoded or not JSON at all."""
    key = st.one_of(st.sampled_from(fields), st.text(max_size=8))
    json_value = st.recursive(
        st.one_of(_plain_value, _odd_token),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(key, inner), max_size=4).map(_render),
        ),
        max_leaves=8,
    )
    field_value = st.one_of(json_value, good_prompt, st.integers(0, 4000).map(str), _nested)
    # Objects shaped like a request: known keys (repeated at times) and stray ones, with any value.
    request_like = st.lists(st.tuples(key, field_value), max_size=7).map(_render)
    return st.one_of(
        valid.flatmap(_encoded),
        request_like.flatmap(_encoded),
        json_value.flatmap(_encoded),
        _nested.map(str.encode),
        st.binary(max_size=64),
    )


json_bodies = bodies_for(
    FIELDS,
    st.builds(
        lambda prompt, tokens: _render([("prompt", prompt), ("max_tokens", str(tokens))]),
        good_prompt,
        st.integers(1, 20),
    ),
)
"""Raw request bodies: JSON that is valid, odd, pathological, mis-encoded or not JSON at all."""

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~", min_size=1)
_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
media_types = st.one_of(
    st.sampled_from(
        [
            "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
            "application/json; charset=no-such-charset", "application/json;;", "APPLICATION/JSON",
            "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "application/problem+json", "application/vnd.api+json", "*/*", "", "json", "application/",
        ]
    ),
    st.builds(lambda a, b: f"{a}/{b}", _token, _token),
    _header_text,
)  # fmt: skip
"""Content-Type values: right, almost right, wrong and garbage."""

_header = st.one_of(
    st.tuples(st.just("Content-Encoding"), st.sampled_from(["gzip", "br", "identity", "x-nope", ""])),
    st.tuples(
        st.just("Accept"), st.one_of(st.sampled_from(["text/event-stream", "application/xml", "*/*"]), _header_text)
    ),
    st.tuples(st.just("X-Request-ID"), _header_text),
    st.tuples(st.just("Content-Length"), st.sampled_from(["abc", "-1", "0", "1", " 2", "1e3", "0x10"])),
    st.tuples(st.just("Transfer-Encoding"), st.sampled_from(["chunked", "gzip", "identity", "x-nope"])),
    st.tuples(_token, _header_text),
)
headers = st.lists(_header, max_size=4)
"""Extra request headers: encodings, accepts, ids, broken lengths and framings, anything printable."""

methods = st.one_of(
    st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"]),
    _token.map(str.upper),
)


def assert_problem_or_answer(answer: RawAnswer, method: str) -> None:
    """The tier's rule for any request: never a 5xx; an error is problem+json whose `status` is the answer's."""
    if answer.status == 0:
        return  # a Content-Length that lies: the client hung up, or the server's close reset the answer
    assert answer.status < 500, (answer.status, answer.body[:300])
    if answer.status >= 400:
        assert answer.media_type == "application/problem+json", (answer.status, answer.headers, answer.body[:300])
        if method != "HEAD":
            problem: dict[str, Any] = json.loads(answer.body)
            assert problem["status"] == answer.status
            assert problem["title"]


def assert_bedrock_error_or_answer(answer: RawAnswer, method: str) -> None:
    """The local Bedrock's rule for any request: never a 5xx; an error is Bedrock's, as boto3 reads it: JSON
    `{"message": ...}` and the exception's name in `x-amzn-errortype`."""
    if answer.status == 0:
        return  # a Content-Length that lies: the client hung up, or the server's close reset the answer
    assert answer.status < 500, (answer.status, answer.body[:300])
    if answer.status >= 400:
        assert answer.media_type == "application/json", (answer.status, answer.headers, answer.body[:300])
        assert answer.headers.get("x-amzn-errortype", "").endswith(":"), answer.headers
        if method != "HEAD":
            assert json.loads(answer.body)["message"]
