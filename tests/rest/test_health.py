"""GET /health and GET /ready, including readiness when a tier behind is down."""

import asyncio

import httpx
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lambdallm.rest.llm import SERVICE_NAME
from tests.fakes.llm_service import grpc_server
from tests.fakes.stack import running_rest


async def test_health_ok(http):
    response = await http.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_chain_answers(http):
    response = await http.get("/ready")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_not_ready_when_backend_down(http, fake):
    await fake.stop()
    response = await http.get("/ready")
    assert response.status_code == 503
    assert "backend" in response.json()["detail"]


async def test_not_ready_when_proxy_down(fake):
    async with running_rest("127.0.0.1:1", ready_timeout_s=0.5) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "proxy unreachable" in response.json()["detail"]
        health = await http.get("/health")
        assert health.status_code == 200


def health_server(servicer):
    """A gRPC server on a free loopback port that has only the health service `servicer`; yields its target."""
    return grpc_server(lambda server: health_pb2_grpc.add_HealthServicer_to_server(servicer, server))


async def test_ready_asks_for_the_llm_service_not_the_server_as_a_whole():
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    async with health_server(servicer) as target, running_rest(target) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/ready")

    assert (response.status_code, response.json()["title"]) == (503, "Service Unavailable")
    assert response.json()["detail"] == "gRPC proxy reports NOT_SERVING: the LLM backend is unreachable"


class SilentHealth(health_pb2_grpc.HealthServicer):
    """A proxy whose health check never answers (until the test ends)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def Check(self, request, context):
        await self.release.wait()
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def test_a_readiness_check_that_gets_no_answer_is_a_503_within_ready_timeout(caplog):
    servicer = SilentHealth()
    async with (
        health_server(servicer) as target,
        running_rest(target, ready_timeout_s=1.0) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        try:
            response = await http.get("/ready")
        finally:
            servicer.release.set()  # so that a check still waiting lets the tier stop

    assert (response.status_code, response.json()["title"]) == (503, "Service Unavailable")
    assert response.json()["detail"] == "gRPC proxy unreachable: DEADLINE_EXCEEDED"
    [record] = [r for r in caplog.records if r.getMessage() == "readiness check failed"]
    assert (record.levelname, record.code, record.details) == ("WARNING", "DEADLINE_EXCEEDED", "Deadline Exceeded")
