"""GenerateText over real gRPC against the fake backend's stream, collected: success, error mapping, deadlines,
validation."""

import asyncio

import grpc
import pytest

from generated.llm.v1 import llm_pb2
from tests.fakes.backend import Reply, completion, problem


def query(**fields):
    return llm_pb2.LlmQueryRequest(**({"prompt": "Hi there", "max_tokens": 10} | fields))


async def test_success_forwards_fields_and_request_id(stub, proxy):
    reply = await stub.GenerateText(
        query(temperature=0.7, top_p=0.9, stop_sequences=["\n"]), metadata=(("x-request-id", "rid-1"),)
    )
    assert reply.text == "echo: Hi there"
    assert (reply.input_tokens, reply.output_tokens, reply.finish_reason) == (2, 3, "stop")  # a token a word
    assert reply.request_id == "rid-1"
    headers, body = proxy.fake.requests[-1]
    assert headers["X-Request-ID"] == "rid-1"
    assert headers["X-Batch-Ms"] == "20"  # its lines may come joined: the caller reads them all before answering
    assert body == {"prompt": "Hi there", "max_tokens": 10, "temperature": 0.7, "top_p": 0.9, "stop_sequences": ["\n"]}
    assert proxy.fake.paths[-1] == "/query/stream"  # the whole answer is the backend's stream, collected


async def test_an_error_event_after_text_is_the_status_a_problem_would_have(stub, proxy):
    events = [{"type": "text", "text": "Hi"}, {"type": "error", "status": 429, "detail": "the model is busy"}]
    proxy.fake.replies.append(Reply(events=events))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "the model is busy")
    assert ("retry-after", "1") in tuple(caught.value.trailing_metadata())


async def test_a_caller_that_goes_away_mid_answer_stops_the_backend_stream(stub, proxy):
    gate = asyncio.Event()  # never set: the backend would generate forever after the first piece
    proxy.fake.replies.append(Reply(gates={1: gate}))
    call = stub.GenerateText(query())
    await proxy.fake.wait_for_queries(1)

    call.cancel()

    await asyncio.wait_for(proxy.fake.cancelled.wait(), 5)


async def test_request_id_generated_when_absent(stub, proxy):
    reply = await stub.GenerateText(query())
    assert len(reply.request_id) == 32
    assert proxy.fake.requests[-1][0]["X-Request-ID"] == reply.request_id


@pytest.mark.parametrize("sent", ["x" * 129, "two words", ""])
async def test_a_request_id_the_policy_refuses_is_replaced_not_cut(stub, proxy, sent):
    reply = await stub.GenerateText(query(), metadata=(("x-request-id", sent),))
    assert reply.request_id != sent[:128]
    assert len(reply.request_id) == 32
    assert proxy.fake.requests[-1][0]["X-Request-ID"] == reply.request_id


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (502, grpc.StatusCode.INTERNAL),  # a permanent failure behind the backend: the REST tier's 502
        (503, grpc.StatusCode.UNAVAILABLE),
        (504, grpc.StatusCode.DEADLINE_EXCEEDED),
        (500, grpc.StatusCode.INTERNAL),
    ],
)
async def test_backend_problem_maps_to_status_with_detail(stub, proxy, status, code):
    proxy.fake.replies.append(problem(status, f"backend says {status}"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == code
    assert caught.value.details() == f"backend says {status}"


async def test_retry_after_is_passed_on(stub, proxy):
    reply = problem(429, "busy")
    reply.headers = {"Retry-After": "7"}
    proxy.fake.replies.append(reply)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert ("retry-after", "7") in tuple(caught.value.trailing_metadata())


@pytest.mark.parametrize(
    ("sent", "passed_on"),
    [(None, "1"), ("soon", "1"), ("-3", "1"), ("1.5", "1"), ("99999", "3600"), ("Wed, 21 Oct 2015 07:28:00 GMT", "1")],
)
async def test_retry_after_is_always_whole_seconds(stub, proxy, sent, passed_on):
    reply = problem(429, "busy")
    reply.headers = {"Retry-After": sent} if sent is not None else {}
    proxy.fake.replies.append(reply)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert ("retry-after", passed_on) in tuple(caught.value.trailing_metadata())


def test_an_http_date_retry_after_becomes_the_seconds_until_then():
    from email.utils import formatdate

    from lambdallm.proxy.errors import retry_after_seconds

    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30


async def test_a_backend_problem_beyond_the_cap_is_internal_and_not_read_whole(stub, proxy):
    from lambdallm.proxy.backend import MAX_BODY_BYTES

    too_large = Reply(status=502, raw=b"x" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "application/json"})
    proxy.fake.replies.append(too_large)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert f"exceeds {MAX_BODY_BYTES} bytes" in caught.value.details()


async def test_a_whole_answer_beyond_the_cap_is_internal(stub, proxy):
    from lambdallm.proxy.backend import MAX_BODY_BYTES

    proxy.fake.replies.append(Reply(body=completion("x", text="x" * (MAX_BODY_BYTES + 1))))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert f"text exceeds {MAX_BODY_BYTES} bytes" in caught.value.details()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw=b"not json"),
        Reply(raw=b"x" * 200_000),  # one line longer than any event
        Reply(body={"text": "hi"}),
        Reply(body=completion("x", finish_reason="weird")),
        Reply(body=completion("x", output_tokens=-1)),
        Reply(body=completion("x", text=None)),
    ],
)
async def test_contract_breaking_200_is_internal(stub, proxy, reply):
    proxy.fake.replies.append(reply)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "contract" in caught.value.details()


async def test_empty_text_with_finish_reason_is_ok(stub, proxy):
    proxy.fake.replies.append(Reply(body=completion("x", text="", output_tokens=0, finish_reason="content_filter")))
    reply = await stub.GenerateText(query())
    assert (reply.text, reply.finish_reason) == ("", "content_filter")


async def test_dropped_connection_is_unavailable(stub, proxy):
    proxy.fake.replies.append(Reply(drop=True))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_backend_down_is_unavailable(stub, proxy):
    await proxy.fake.stop()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_caller_deadline_cancels_backend_request(stub, proxy):
    proxy.fake.replies.append(Reply(hold=asyncio.Event()))  # never answers
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query(), timeout=3)  # long enough to reach the backend on a busy machine
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(proxy.fake.cancelled.wait(), 5)


async def test_caller_cancellation_cancels_backend_request(stub, proxy):
    proxy.fake.replies.append(Reply(delay_s=30))
    call = stub.GenerateText(query())
    while not proxy.fake.requests:
        await asyncio.sleep(0.01)
    call.cancel()
    await asyncio.wait_for(proxy.fake.cancelled.wait(), 5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": ""}, "prompt, messages"),
        ({"prompt": "x" * 32001}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 3073}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"stop_sequences": ["a"] * 5}, "stop_sequences"),
        ({"stop_sequences": [""]}, "stop_sequences"),
        ({"stop_sequences": ["x" * 101]}, "stop_sequences"),
    ],
)
async def test_validation_names_the_field(stub, proxy, fields, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}:")
    assert proxy.fake.requests == []


def turn(role, content):
    return llm_pb2.ChatMessage(role=role, content=content)


CHAT = [
    turn(llm_pb2.ROLE_USER, "My name is Ada."),
    turn(llm_pb2.ROLE_ASSISTANT, "Hello Ada!"),
    turn(llm_pb2.ROLE_USER, "What is my name?"),
]


async def test_a_conversation_reaches_the_backend_as_messages_and_system(stub, proxy):
    await stub.GenerateText(llm_pb2.LlmQueryRequest(messages=CHAT, system="Be brief.", max_tokens=7))
    assert proxy.fake.requests[-1][1] == {
        "messages": [
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada!"},
            {"role": "user", "content": "What is my name?"},
        ],
        "system": "Be brief.",
        "max_tokens": 7,
    }


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"prompt": ""}, "prompt, messages"),
        ({"messages": CHAT}, "prompt, messages"),
        ({"system": "Be brief."}, "system"),
        ({"prompt": "", "messages": CHAT[:2]}, "messages"),
        ({"prompt": "", "messages": [CHAT[1]]}, "messages[0].role"),
        ({"prompt": "", "messages": [CHAT[0], CHAT[0]]}, "messages[1].role"),
        ({"prompt": "", "messages": [turn(llm_pb2.ROLE_USER, "")]}, "messages[0].content"),
        ({"prompt": "", "messages": [turn(llm_pb2.ROLE_USER, "x" * 30000)], "system": "y" * 2001}, "together"),
        ({"prompt": "", "messages": [CHAT[0]], "system": "y" * 8001}, "system: a string of 1 to 8000 characters"),
        (
            {"prompt": "", "messages": [CHAT[0], CHAT[1]] * 49 + [CHAT[0], CHAT[1], CHAT[2]]},
            "messages: a list of 1 to 99",
        ),
    ],
)
async def test_bad_conversations_are_invalid_argument_naming_the_field(stub, proxy, fields, named):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in caught.value.details()
    assert proxy.fake.requests == []


async def test_a_system_text_of_8000_characters_is_the_most_the_proxy_takes(stub, proxy):
    # Called directly: the REST tier's schema refuses 8001 before the proxy would see it.
    await stub.GenerateText(llm_pb2.LlmQueryRequest(messages=CHAT[:1], system="y" * 8000, max_tokens=7))
    assert len(proxy.fake.requests[-1][1]["system"]) == 8000


@pytest.mark.parametrize(
    ("status", "code"),
    [(502, grpc.StatusCode.INTERNAL), (503, grpc.StatusCode.UNAVAILABLE), (504, grpc.StatusCode.DEADLINE_EXCEEDED)],
)
@pytest.mark.parametrize("raw", [b"<html><body>Bad Gateway</body></html>", b"", b"[1, 2]", b'{"detail": 7}'])
async def test_an_error_body_that_is_no_problem_document_still_maps_by_status(stub, proxy, status, code, raw):
    # A load balancer's HTML page, an empty body, JSON without a usable detail: the status alone decides.
    proxy.fake.replies.append(Reply(status=status, raw=raw, headers={"Content-Type": "text/html"}))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert caught.value.code() == code
    assert caught.value.details() == f"backend answered HTTP {status}"


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"message": "Missing Authentication Token"}, "backend answered HTTP 403: Missing Authentication Token"),
        ({"message": "Signature mismatch\nThe Canonical String was"}, "backend answered HTTP 403: Signature mismatch"),
        ({"message": "x" * 300}, "backend answered HTTP 403: " + "x" * 200),
        ({"message": ""}, "backend answered HTTP 403"),
        ({"message": 7}, "backend answered HTTP 403"),
        ({"detail": "", "message": "m"}, "backend answered HTTP 403: m"),
    ],
)
async def test_an_api_gateway_refusal_is_named_by_the_first_line_of_its_message(stub, proxy, body, details):
    proxy.fake.replies.append(Reply(status=403, body=body))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(query())
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INTERNAL, details)
