"""What REST problems say about failures behind the tier: the status and what failed, never an internal address,
host name or exception text (the log keeps them); the proxy's own details for the client pass."""

import httpx
import pytest

from tests.fakes.backend import Reply
from tests.fakes.stack import AUTHORIZATION, running_rest

VALID = {"prompt": "Hi there", "max_tokens": 10}
LEAKS = ("127.0.0.1", "ipv4", "Error", "Exception", "failed to connect")


def assert_private(text):
    assert not [leak for leak in LEAKS if leak in text], text


@pytest.fixture
async def rest_without_proxy():
    async with (
        running_rest("127.0.0.1:1", ready_timeout_s=0.5, deadline_s=1.0) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as http,
    ):
        yield http


async def test_an_unreachable_proxy_is_503_without_its_address(rest_without_proxy, caplog):
    response = await rest_without_proxy.post("/query", json=VALID)

    assert response.status_code == 503
    assert response.json()["detail"] == "the call to the gRPC proxy failed: UNAVAILABLE"
    assert_private(response.text)
    [record] = [r for r in caplog.records if r.getMessage() == "gRPC call failed"]
    assert (record.levelname, record.code) == ("WARNING", "UNAVAILABLE")
    assert "127.0.0.1:1" in record.details  # the log keeps what the answer leaves out


async def test_ready_says_the_proxy_is_unreachable_without_its_address(rest_without_proxy):
    response = await rest_without_proxy.get("/ready")

    assert response.status_code == 503
    assert response.json()["detail"] == "gRPC proxy unreachable: UNAVAILABLE"
    assert_private(response.text)


async def test_an_unreachable_backend_is_503_naming_the_backend_not_its_address(http, fake):
    await fake.stop()

    response = await http.post("/query", json=VALID)

    assert (response.status_code, response.json()["detail"]) == (503, "backend unreachable")
    assert_private(response.text)


async def test_a_stream_cut_mid_answer_is_an_error_event_without_the_exception(http, fake):
    events = [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]
    fake.replies.append(Reply(events=events, drop_after=1))

    response = await http.post("/query", json=VALID, headers={"Accept": "text/event-stream"})

    assert response.status_code == 200
    assert response.text.startswith("event: text")
    assert '"detail": "backend request failed"' in response.text
    assert "payload" not in response.text.lower()
    assert_private(response.text)
