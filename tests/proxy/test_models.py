"""Model choice at the proxy: `model` and `continuation` reach the backend; ListModels is the backend's GET /models,
its failures through the one error table (a 404 is NOT_FOUND), its body capped."""

import grpc
import pytest

from generated.llm.v1 import llm_pb2
from lambdallm.proxy.backend import MAX_MODELS_BYTES
from tests.fakes.backend import Reply, problem


async def test_model_and_continuation_are_forwarded_only_when_set(stub, proxy):
    await stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="Once", max_tokens=3, model="m.x", continuation=True))
    await stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="Once", max_tokens=3))
    (_, chosen), (_, default) = proxy.fake.requests[-2:]
    assert chosen == {"prompt": "Once", "max_tokens": 3, "model": "m.x", "continuation": True}
    assert default == {"prompt": "Once", "max_tokens": 3}


async def test_continuation_on_a_conversation_is_invalid_argument_in_the_backends_words(stub, proxy):
    messages = [llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="Hi")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(llm_pb2.LlmQueryRequest(messages=messages, max_tokens=3, continuation=True))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "continuation: only with prompt (a conversation is answered)"


async def test_a_model_the_backend_does_not_serve_is_not_found_with_its_detail(stub, proxy):
    proxy.fake.replies.append(problem(404, "model: 'x' is not served here (served: fake-model)"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="Hi", max_tokens=3, model="x"))
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "model: 'x' is not served here (served: fake-model)",
    )


async def test_list_models_is_the_backends_list_in_its_order(stub, proxy):
    reply = await stub.ListModels(llm_pb2.ListModelsRequest(), metadata=(("x-request-id", "rid-models"),))
    assert [(m.id, m.owned_by, m.instruct) for m in reply.models] == [
        ("fake-model", "fake", True),
        ("fake-base", "fake", False),
    ]
    headers, body = proxy.fake.requests[-1]
    assert (proxy.fake.paths[-1], body, headers["X-Request-ID"]) == ("/models", b"", "rid-models")
    assert headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "code", "details"),
    [
        (problem(503, "the model is not ready yet"), grpc.StatusCode.UNAVAILABLE, "the model is not ready yet"),
        (
            Reply(status=404, body={"title": "Not Found", "status": 404, "detail": "no resource at /models"}),
            grpc.StatusCode.NOT_FOUND,
            "no resource at /models",
        ),
        (
            Reply(body={"models": []}),
            grpc.StatusCode.INTERNAL,
            "backend answer breaks the contract: models is missing or empty",
        ),
        (
            Reply(body={"models": [{"id": "a", "owned_by": "b", "instruct": "yes"}]}),
            grpc.StatusCode.INTERNAL,
            "backend answer breaks the contract: a model's instruct is not a boolean",
        ),
        (
            Reply(raw=b"x" * (MAX_MODELS_BYTES + 1)),
            grpc.StatusCode.INTERNAL,
            f"backend answer breaks the contract: body exceeds {MAX_MODELS_BYTES} bytes",
        ),
    ],
)
async def test_list_models_failures_go_through_the_one_table(stub, proxy, reply, code, details):
    proxy.fake.models = reply
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListModels(llm_pb2.ListModelsRequest())
    assert (caught.value.code(), caught.value.details()) == (code, details)


async def test_list_models_needs_the_proxy_token(proxy):
    from generated.llm.v1 import llm_pb2_grpc
    from tests.fakes.stack import proxy_channel

    async with proxy_channel(proxy.target, token=None) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await llm_pb2_grpc.LlmServiceStub(channel).ListModels(llm_pb2.ListModelsRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
