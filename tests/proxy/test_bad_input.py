"""Property: whatever bytes a client sends as a request message, with whatever metadata, the proxy answers OK
or INVALID_ARGUMENT, never INTERNAL or UNKNOWN (a real proxy over real gRPC, in front of the fake backend)."""

from __future__ import annotations

import math

import grpc
from hypothesis import example, given
from hypothesis import strategies as st

from generated.llm.v1 import llm_pb2
from tests.bad_input import FUZZ

METHODS = ["/llm.v1.LlmService/GenerateText", "/llm.v1.LlmService/GenerateTextStream"]
_texts = st.text(max_size=40)
_turns = st.lists(
    st.builds(llm_pb2.ChatMessage, role=st.integers(0, 3), content=_texts), max_size=4
)  # role 3 is no Role at all
queries = st.builds(
    llm_pb2.LlmQueryRequest,
    prompt=_texts,
    max_tokens=st.integers(-(2**31), 2**31 - 1),
    temperature=st.floats(width=32),
    top_p=st.floats(width=32),
    stop_sequences=st.lists(st.text(max_size=120), max_size=6),
    messages=_turns,
    system=_texts,
)
_bytes_of_queries = st.one_of(
    queries.map(lambda q: q.SerializeToString()),
    queries.map(lambda q: llm_pb2.GenerateTextStreamRequest(query=q).SerializeToString()),
)


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    """A serialized request cut short, with a byte flipped, or with an unknown field appended."""
    message = draw(_bytes_of_queries)
    how = draw(st.sampled_from(["cut", "flip", "append"]))
    if how == "append" or not message:
        return message + draw(st.binary(min_size=1, max_size=12))
    at = draw(st.integers(0, len(message) - 1))
    return message[:at] if how == "cut" else message[:at] + bytes([message[at] ^ 0xFF]) + message[at + 1 :]


messages = st.one_of(_bytes_of_queries, _mangled(), st.binary(max_size=64))
metadata = st.lists(
    st.tuples(
        st.one_of(st.just("x-request-id"), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1)),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
    ).filter(lambda pair: not pair[0].startswith("grpc-") and not pair[0].endswith("-bin")),
    max_size=3,
)
_invalid_utf8 = b"\x0a\x02\xff\xfe\x10\x05"  # prompt = 0xFF 0xFE, max_tokens = 5


@FUZZ
@given(method=st.sampled_from(METHODS), message=messages, extra=metadata)
@example(method=METHODS[0], message=b"\xff\xff\xff", extra=[])  # was INTERNAL: "Exception deserializing request!"
@example(method=METHODS[0], message=_invalid_utf8, extra=[])
@example(method=METHODS[1], message=b"\x0a\x05\x0a\x02\xff\xfe", extra=[])
async def test_any_request_bytes_are_ok_or_invalid_argument(channel, method, message, extra) -> None:
    call = channel.unary_stream(method) if method.endswith("Stream") else channel.unary_unary(method)

    try:
        answer = call(message, metadata=tuple(extra), timeout=10)
        if method.endswith("Stream"):
            [piece async for piece in answer]
        else:
            await answer
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details()
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert details

    if code == grpc.StatusCode.OK:  # only a request within the contract's bounds reaches the backend
        query = _query_of(method, message)
        assert bool(query.prompt) != bool(query.messages) and 1 <= query.max_tokens <= 3072
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in (query.temperature, query.top_p))


def _query_of(method: str, message: bytes) -> llm_pb2.LlmQueryRequest:
    if method.endswith("Stream"):
        return llm_pb2.GenerateTextStreamRequest.FromString(message).query
    return llm_pb2.LlmQueryRequest.FromString(message)
