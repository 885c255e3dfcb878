"""Standard health checking reflects the backend; reflection lists the services."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.fakes.backend import Reply
from tests.fakes.stack import proxy_channel, running_proxy

SERVICE = "llm.v1.LlmService"


async def test_health_serving_while_backend_answers(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_not_serving_when_backend_down(channel, proxy):
    await proxy.fake.stop()
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"title": "Not Found", "status": 404}),  # a backend URL without its stage, or another service
        (403, {"message": "Missing Authentication Token"}),  # what API Gateway answers for an unknown path
        (200, {"text": "a backend that answers an empty query is not this backend"}),
        (500, {"title": "Internal Server Error", "status": 500}),
    ],
)
async def test_health_not_serving_unless_the_probe_gets_the_validation_answer(channel, proxy, status, body):
    proxy.fake.probe = Reply(status=status, body=body)
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_not_serving_when_the_probe_times_out(fake):
    fake.probe = Reply(status=400, body={"status": 400}, delay_s=5)
    async with running_proxy(fake, probe_timeout_s=0.2) as proxy, proxy_channel(proxy.target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_serving_while_every_backend_connection_is_busy_generating(fake):
    fake.replies.extend([Reply(delay_s=30), Reply(delay_s=30)])
    async with (
        # A probe queued behind the busy connections would wait their 30 s: 10 s tells it apart on any machine.
        running_proxy(fake, max_connections=2, probe_timeout_s=10.0) as proxy,
        proxy_channel(proxy.target) as channel,
    ):
        stub = llm_pb2_grpc.LlmServiceStub(channel)
        calls = [
            asyncio.ensure_future(stub.GenerateText(llm_pb2.LlmQueryRequest(prompt="slow", max_tokens=1)))
            for _ in range(2)
        ]
        while len(fake.requests) < 2:
            await asyncio.sleep(0.01)

        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))

        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_watches_beyond_the_limit_are_refused_until_one_closes(fake):
    """Health checking is open to anyone: each Watch holds a stream, so their number is bounded."""
    async with running_proxy(fake, max_health_watches=2) as proxy, proxy_channel(proxy.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest(service=f"made-up-{n}")) for n in range(2)]
        for watch in watches:  # each answers its first status once it is open
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

        extra = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await extra.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        watches[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await watches[0].read()
        again = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await again.read()).status == health_pb2.HealthCheckResponse.SERVING  # a slot freed, in time


async def test_a_health_watch_follows_the_backend(channel, proxy):
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

    await proxy.fake.stop()

    assert (await asyncio.wait_for(watch.read(), 30)).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()


async def test_health_unknown_service_is_not_found(channel):
    health = health_pb2_grpc.HealthStub(channel)
    try:
        await health.Check(health_pb2.HealthCheckRequest(service="nope"))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
    else:
        raise AssertionError("expected NOT_FOUND")


async def test_reflection_lists_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for reply in stub.ServerReflectionInfo(requests()):
        names |= {service.name for service in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_reflection_v1_answers_like_v1alpha(channel):
    """grpcurl and Postman ask grpc.reflection.v1 first; the messages are v1alpha's on the wire."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)

    replies = [reply async for reply in call(requests())]
    assert SERVICE in {service.name for service in replies[0].list_services_response.service}
    assert replies[1].file_descriptor_response.file_descriptor_proto
