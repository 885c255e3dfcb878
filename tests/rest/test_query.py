"""POST /query over real HTTP through a real proxy to the fake backend."""

import asyncio
import json

import httpx
import pytest

from tests.fakes.backend import Reply, problem

VALID = {"prompt": "Hi there", "max_tokens": 10}


def assert_problem(response, status, detail_part=""):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert detail_part in body.get("detail", "")
    assert "Traceback" not in response.text
    return body


async def test_generate_returns_contract_body(http):
    response = await http.post("/query", json=VALID)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"text", "model", "input_tokens", "output_tokens", "finish_reason", "request_id"}
    assert body["text"] == "echo: Hi there"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_request_id_round_trip(http, fake):
    response = await http.post("/query", json=VALID, headers={"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"
    assert fake.requests[-1][0]["X-Request-ID"] == "trace-42"


async def test_request_id_generated(http, fake):
    response = await http.post("/query", json=VALID)
    rid = response.headers["x-request-id"]
    assert len(rid) == 32
    assert fake.requests[-1][0]["X-Request-ID"] == rid


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": 10}, "prompt"),
        ({"prompt": "x"}, "max_tokens"),
        (VALID | {"colour": "red"}, "colour"),
        (VALID | {"max_tokens": 3073}, "max_tokens"),
        (VALID | {"temperature": 2}, "temperature"),
        (VALID | {"stop_sequences": ["a"] * 5}, "stop_sequences"),
        (VALID | {"prompt": ""}, "prompt"),
    ],
)
async def test_invalid_body_is_400_naming_the_field(http, fake, body, field):
    assert_problem(await http.post("/query", json=body), 400, field)
    assert fake.requests == []


CHAT = [
    {"role": "user", "content": "My name is Ada."},
    {"role": "assistant", "content": "Hello Ada!"},
    {"role": "user", "content": "What is my name?"},
]


async def test_a_conversation_reaches_the_backend_turn_by_turn(http, fake):
    response = await http.post("/query", json={"messages": CHAT, "system": "Be brief.", "max_tokens": 7})
    assert response.status_code == 200, response.text
    assert fake.requests[-1][1] == {"messages": CHAT, "system": "Be brief.", "max_tokens": 7}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": 10}, "prompt, messages"),
        (VALID | {"messages": CHAT}, "prompt, messages"),
        (VALID | {"system": "Be brief."}, "system"),
        ({"messages": CHAT[:2], "max_tokens": 5}, "last turn"),
        ({"messages": CHAT[1:], "max_tokens": 5}, "messages[0].role"),
        ({"messages": [{"role": "bot", "content": "Hi"}], "max_tokens": 5}, "bot"),
        ({"messages": [{"role": "user", "content": ""}], "max_tokens": 5}, "content"),
        ({"messages": [], "max_tokens": 5}, "messages"),
    ],
)
async def test_a_bad_conversation_is_400_naming_the_field(http, fake, body, field):
    assert_problem(await http.post("/query", json=body), 400, field)
    assert fake.requests == []


async def test_unknown_query_parameter_is_400(http):
    assert_problem(await http.post("/query?debug=1", json=VALID), 400, "debug")


async def test_non_utf8_body_is_400(http):
    response = await http.post(
        "/query", content=b'{"prompt": "\xff\xfe", "max_tokens": 5}', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "UTF-8")


async def test_malformed_json_is_400(http):
    response = await http.post("/query", content=b"{nope", headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


async def test_oversized_body_is_413(http):
    body = json.dumps(VALID | {"prompt": "x" * 4000})
    response = await http.post("/query", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "2048")


@pytest.mark.parametrize(
    ("backend", "status"), [(400, 400), (429, 429), (502, 503), (503, 503), (504, 504), (500, 502)]
)
async def test_grpc_status_maps_to_http(http, fake, backend, status):
    fake.replies.append(problem(backend, f"backend says {backend}"))
    body = assert_problem(await http.post("/query", json=VALID), status, f"backend says {backend}")
    assert body["title"]


async def test_429_carries_retry_after(http, fake):
    fake.replies.append(problem(429, "busy"))
    response = await http.post("/query", json=VALID)
    assert_problem(response, 429, "busy")
    assert response.headers["retry-after"] == "1"


async def test_unknown_path_is_problem(http):
    assert_problem(await http.get("/nope"), 404)


async def test_swagger_ui_served(http):
    response = await http.get("/ui/")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_a_client_that_hangs_up_cancels_the_backend_request(rest, fake):
    fake.replies.append(Reply(delay_s=30))
    async with httpx.AsyncClient(base_url=rest, timeout=60) as client:
        call = asyncio.ensure_future(client.post("/query", json={"prompt": "Hi", "max_tokens": 5}))
        while not fake.requests:
            await asyncio.sleep(0.01)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)

    await asyncio.wait_for(fake.cancelled.wait(), 5)
