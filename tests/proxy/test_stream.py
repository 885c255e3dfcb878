"""GenerateTextStream over real gRPC against the fake backend's stream: pieces as they come, summary, failures."""

import asyncio

import grpc
import pytest

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.fakes.backend import Reply, problem
from tests.fakes.stack import fake_backend, proxy_channel, running_proxy


def stream_request(**fields):
    query = llm_pb2.LlmQueryRequest(**({"prompt": "Hi there you", "max_tokens": 10} | fields))
    return llm_pb2.GenerateTextStreamRequest(query=query)


async def collect(call):
    """The remaining messages, read one by one (grpc does not mix read() and iteration on one call)."""
    messages = []
    while (message := await call.read()) is not grpc.aio.EOF:
        messages.append(message)
    return messages


async def test_pieces_then_a_summary(stub, proxy):
    messages = await collect(stub.GenerateTextStream(stream_request(), metadata=(("x-request-id", "rid-s"),)))

    texts = [m.text for m in messages]  # pieces that reach the proxy in one read go on as one message
    assert "".join(texts) == "echo: Hi there you" and texts[-1] == ""
    assert [m.HasField("summary") for m in messages] == [False] * (len(messages) - 1) + [True]
    summary = messages[-1].summary
    assert (summary.model, summary.input_tokens, summary.output_tokens) == ("fake-model", 3, 4)
    assert (summary.finish_reason, summary.request_id) == ("stop", "rid-s")
    headers, body = proxy.fake.requests[-1]
    assert headers["X-Request-ID"] == "rid-s"
    assert body == {"prompt": "Hi there you", "max_tokens": 10}


@pytest.mark.parametrize("ms", [0, 30])
async def test_a_stream_asks_the_backend_for_the_configured_batch(ms):
    async with (
        fake_backend() as fake,
        running_proxy(fake, stream_batch_ms=ms) as running,
        proxy_channel(running.target) as channel,
    ):
        messages = await collect(llm_pb2_grpc.LlmServiceStub(channel).GenerateTextStream(stream_request()))

    assert messages[-1].summary.output_tokens == 4
    headers, _ = fake.requests[-1]
    assert headers.get("X-Batch-Ms") == (str(ms) if ms else None)  # 0: each piece as the model makes it


async def test_each_piece_is_forwarded_before_the_backend_sends_the_next(stub, proxy):
    gate = asyncio.Event()
    proxy.fake.replies.append(Reply(gates={1: gate}))
    call = stub.GenerateTextStream(stream_request())

    first = await asyncio.wait_for(call.read(), 10)  # the backend holds everything after it until the gate opens
    gate.set()
    rest = await collect(call)

    assert first.text == "echo:"
    assert "".join(m.text for m in rest) == " Hi there you" and rest[-1].HasField("summary")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, grpc.StatusCode.UNAVAILABLE),
        (504, grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
async def test_a_failure_before_the_stream_is_the_unary_status(stub, proxy, status, code):
    proxy.fake.replies.append(problem(status, f"backend says {status}"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateTextStream(stream_request()))
    assert caught.value.code() == code
    assert caught.value.details() == f"backend says {status}"


async def test_an_error_event_after_text_is_its_status(stub, proxy):
    events = [{"type": "text", "text": "Hi"}, {"type": "error", "status": 504, "detail": "the model took too long"}]
    proxy.fake.replies.append(Reply(events=events))
    call = stub.GenerateTextStream(stream_request())

    first = await call.read()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(call)

    assert first.text == "Hi"
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.details() == "the model took too long"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(events=[{"type": "text", "text": "Hi"}]),  # ends without a done event
        Reply(events=[{"type": "mystery"}]),
        Reply(events=[{"type": "done", "model": "m"}]),  # a done event without its counts
        Reply(events=[{"type": "text", "text": "Hi"}], drop_after=1),
    ],
)
async def test_a_broken_stream_is_an_error_status_never_a_quiet_end(stub, proxy, reply):
    proxy.fake.replies.append(reply)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateTextStream(stream_request()))
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE)


async def test_validation_is_the_unary_calls(stub, proxy):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(stub.GenerateTextStream(stream_request(max_tokens=0)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("max_tokens:")
    assert proxy.fake.requests == []


async def test_a_caller_that_cancels_mid_stream_cancels_the_backend_stream(stub, proxy):
    gate = asyncio.Event()  # never set: the backend would wait forever after the first piece
    proxy.fake.replies.append(Reply(gates={1: gate}))
    call = stub.GenerateTextStream(stream_request())
    await call.read()

    call.cancel()

    await asyncio.wait_for(proxy.fake.cancelled.wait(), 5)


async def test_the_deadline_bounds_the_whole_stream(stub, proxy):
    gate = asyncio.Event()
    proxy.fake.replies.append(Reply(gates={1: gate}))
    # Long enough for the first piece on a busy machine; the rest waits behind a gate never opened.
    call = stub.GenerateTextStream(stream_request(), timeout=3)
    await call.read()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(call)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(proxy.fake.cancelled.wait(), 5)
