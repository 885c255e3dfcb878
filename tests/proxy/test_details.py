"""What the proxy's statuses tell its caller: what failed, never the backend's address or an exception's text;
the log keeps those."""

import grpc
import pytest

from generated.llm.v1 import llm_pb2
from tests.fakes.backend import Reply


def _causes(caplog):
    return " ".join(str(getattr(record, "cause", "")) for record in caplog.records)


async def test_an_unreachable_backend_is_unavailable_without_its_address(stub, proxy, caplog):
    port = str(proxy.fake.port)
    await proxy.fake.stop()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="Hi", max_tokens=3))

    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.UNAVAILABLE, "backend unreachable")
    assert port in _causes(caplog)


async def test_a_stream_cut_mid_answer_is_named_without_the_exception(stub, proxy, caplog):
    events = [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]
    proxy.fake.replies.append(Reply(events=events, drop_after=1))
    call = stub.GenerateTextStream(
        llm_pb2.GenerateTextStreamRequest(query=llm_pb2.LlmQueryRequest(prompt="Hi", max_tokens=3))
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while await call.read() is not grpc.aio.EOF:
            pass

    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INTERNAL, "backend request failed")
    assert "payload" in _causes(caplog).lower()  # the client's words stay in the log
