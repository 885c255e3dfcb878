"""GET /health and GET /ready, including readiness when a tier behind is down."""

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
    import httpx

    async with running_rest("127.0.0.1:1", ready_timeout_s=0.5) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "proxy unreachable" in response.json()["detail"]
        health = await http.get("/health")
        assert health.status_code == 200
