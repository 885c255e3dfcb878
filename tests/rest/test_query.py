"""POST /query over real HTTP through a real proxy to the fake backend."""

import asyncio
import dataclasses
import gzip
import json
import logging

import httpx
import pytest

from lambdallm.rest import llm, models
from lambdallm.rest.app import SPEC, create_app
from lambdallm.rest.body_limit import largest_request_bytes, largest_requests
from lambdallm.settings import RestSettings, SettingsError
from tests.fakes.backend import Reply, problem
from tests.fakes.stack import AUTHORIZATION, running_rest

VALID = {"prompt": "Hi there", "max_tokens": 10}
LIMIT = largest_request_bytes(SPEC)  # the default max_body_bytes


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
        ({"messages": [{"role": "bot", "content": "Hi"}], "max_tokens": 5}, "messages[0].role"),
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
    body = json.dumps(VALID | {"prompt": "x" * LIMIT})
    response = await http.post("/query", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, str(LIMIT))


@pytest.mark.parametrize("shape", ["prompt", "messages"])
async def test_the_largest_valid_request_json_escaped_is_answered(http, fake, shape):
    largest = next(request for request in largest_requests(SPEC) if shape in request)
    texts = [largest.get("prompt", ""), largest.get("system", "")] + [m["content"] for m in largest.get("messages", [])]
    assert sum(map(len, texts)) == 32000 and len(largest.get("messages", [None] * 99)) == 99  # at every bound
    # json.dumps escapes what is not ASCII: each of these characters is a 12-byte surrogate pair, \ud83d\ude00.
    body = json.dumps(largest, indent=2)
    assert len(body) > 384_000
    fake.replies.append(Reply(body=completion_of("ok")))

    response = await http.post("/query", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    sent = fake.requests[-1][1]
    assert all(sent[key] == largest[key] for key in ("prompt", "messages", "system") if key in largest)  # whole


def test_a_body_limit_that_would_refuse_a_valid_request_stops_the_tier():
    with pytest.raises(SettingsError, match=f"max_body_bytes: must be at least {LIMIT}"):
        create_app(RestSettings(api_keys="k", grpc_token="t", max_body_bytes=LIMIT - 1))


@pytest.mark.parametrize(
    ("backend", "status"), [(400, 400), (429, 429), (502, 502), (503, 503), (504, 504), (500, 502)]
)
async def test_grpc_status_maps_to_http(http, fake, backend, status):
    fake.replies.append(problem(backend, f"backend says {backend}"))
    body = assert_problem(await http.post("/query", json=VALID), status, f"backend says {backend}")
    assert body["title"]


async def test_sampling_options_reach_the_backend(http, fake):
    options = {"temperature": 0.5, "top_p": 0.9, "stop_sequences": ["\n\n", "User:"]}

    response = await http.post("/query", json=VALID | options)

    assert response.status_code == 200
    assert fake.requests[-1][1] == VALID | options


async def test_structured_output_s_schema_reaches_the_backend(http, fake):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

    response = await http.post("/query", json=VALID | {"json_schema": schema})

    assert response.status_code == 200, response.text
    assert fake.requests[-1][1] == VALID | {"json_schema": schema}


async def test_a_whole_answer_s_server_timing_has_the_proxy_s_part(http):
    response = await http.post("/query", json=VALID)

    assert response.status_code == 200, response.text
    names = {part.split(";")[0] for part in response.headers["server-timing"].split(", ")}
    assert {"total", "rest", "proxy"} <= names  # the proxy's part from its trailing metadata


async def test_the_deadline_bounds_the_call(proxy, fake):
    gate = asyncio.Event()  # the backend answers only once the client has had its 504
    fake.replies.append(Reply(hold=gate))
    try:
        async with (
            running_rest(proxy.target, deadline_s=1.0) as url,
            httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as http,
        ):
            response = await http.post("/query", json=VALID)
    finally:
        gate.set()

    assert_problem(response, 504)


async def test_429_carries_retry_after(http, fake):
    fake.replies.append(problem(429, "busy"))
    response = await http.post("/query", json=VALID)
    assert_problem(response, 429, "busy")
    assert response.headers["retry-after"] == "1"


async def test_unknown_path_is_problem(http):
    problem = assert_problem(await http.get("/nope"), 404)
    assert problem["title"] == "Not Found"
    assert "detail" not in problem  # Starlette's detail only repeats the title


async def test_swagger_ui_served(http):
    response = await http.get("/ui/")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


async def test_a_client_that_hangs_up_cancels_the_backend_request(rest, fake):
    fake.replies.append(Reply(delay_s=30))
    async with httpx.AsyncClient(base_url=rest, timeout=60, headers=AUTHORIZATION) as client:
        call = asyncio.ensure_future(client.post("/query", json={"prompt": "Hi", "max_tokens": 5}))
        while not fake.requests:
            await asyncio.sleep(0.01)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)

    await asyncio.wait_for(fake.cancelled.wait(), 5)


async def test_a_rejected_prompt_is_named_not_echoed_in_the_answer_or_any_log(proxy, caplog):
    caplog.set_level(logging.DEBUG)
    body = json.dumps(VALID | {"prompt": "secret-" + "x" * 32000})
    async with (
        running_rest(proxy.target) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
    ):
        response = await client.post("/query", content=body, headers={"Content-Type": "application/json"})

    problem = assert_problem(response, 400, "prompt: must be at most 32000 characters")
    assert "secret-" not in response.text
    assert len(response.content) < 500
    assert problem["detail"] == "prompt: must be at most 32000 characters"
    assert not [r for r in caplog.records if "secret-" in r.getMessage() or "secret-" in str(r.__dict__)]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (VALID | {"temperature": 7.25}, "temperature: must be at most 1"),
        (VALID | {"max_tokens": "many-7.25"}, "max_tokens: must be of type integer"),
        (VALID | {"stop_sequences": ["ok", "7.25" * 30]}, "stop_sequences[1]: must be at most 100 characters"),
        (VALID | {"colour-7.25": 1}, "colour-7.25: unknown field"),
    ],
)
async def test_a_400_names_the_field_and_the_rule_never_the_value(http, body, detail):
    problem = assert_problem(await http.post("/query", json=body), 400)
    assert problem["detail"] == detail


async def test_a_bad_request_id_header_is_named_without_its_value_or_the_schema(http, caplog):
    caplog.set_level(logging.DEBUG)
    response = await http.post("/query", json=VALID, headers={"X-Request-ID": "bad id secret"})

    problem = assert_problem(response, 400, "X-Request-ID")
    assert "secret" not in response.text
    assert "Failed validating" not in problem["detail"]
    assert not [r for r in caplog.records if "secret" in r.getMessage() or "secret" in str(r.__dict__)]


async def test_a_chunked_body_is_accepted(http, fake):
    async def chunks():
        yield b'{"prompt": "Hi chunked", '
        yield b'"max_tokens": 10}'

    response = await http.post("/query", content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    assert response.json()["text"] == "echo: Hi chunked"


async def test_a_chunked_body_over_the_limit_is_413(http, fake):
    async def chunks():
        yield b'{"prompt": "'
        for _ in range(LIMIT // 1000 + 1):
            yield b"x" * 1000
        yield b'", "max_tokens": 10}'

    response = await http.post("/query", content=chunks(), headers={"Content-Type": "application/json"})

    assert_problem(response, 413, str(LIMIT))
    assert fake.requests == []


async def test_grpc_refusing_a_too_large_message_is_502_not_model_busy(http, fake):
    fake.replies.append(Reply(body={**completion_of("x" * 5_000_000)}))

    response = await http.post("/query", json=VALID)

    problem = assert_problem(response, 502)
    assert "retry-after" not in response.headers
    assert (problem["title"], problem["detail"]) == ("Bad Gateway", "the gRPC call exceeded a gRPC limit")


async def test_a_backend_retry_after_date_reaches_the_client_as_seconds(http, fake):
    reply = problem(429, "busy")
    reply.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    fake.replies.append(reply)

    response = await http.post("/query", json=VALID)

    assert_problem(response, 429, "busy")
    assert response.headers["retry-after"] == "1"


def completion_of(text):
    from tests.fakes.backend import completion

    return completion("p") | {"text": text}


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "GZIP", "x-nope"])
async def test_a_content_encoding_other_than_identity_is_415_before_anything_reads_the_body(http, fake, coding):
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    response = await http.post("/query", content=gzip.compress(json.dumps(VALID).encode()), headers=headers)

    assert assert_problem(response, 415, "content-encoding: must be identity")["title"] == "Unsupported Media Type"
    assert [body for _, body in fake.requests if body != {}] == []


async def test_content_encoding_identity_is_a_plain_body(http):
    headers = {"Content-Type": "application/json", "Content-Encoding": "identity"}
    response = await http.post("/query", content=json.dumps(VALID).encode(), headers=headers)

    assert response.status_code == 200, response.text


async def test_system_is_at_most_8000_characters(proxy):
    # The `http` fixture's tier takes bodies of 2048 bytes at most; this one takes the default.
    async with running_rest(proxy.target) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        conversation = {"messages": CHAT[:1], "max_tokens": 5}
        refused = await http.post("/query", json=conversation | {"system": "y" * 8001}, headers=AUTHORIZATION)
        taken = await http.post("/query", json=conversation | {"system": "y" * 8000}, headers=AUTHORIZATION)

    assert_problem(refused, 400, "system")
    assert taken.status_code == 200, taken.text
    assert len(proxy.fake.requests[-1][1]["system"]) == 8000


async def test_a_body_of_json_null_is_400_body_required(http, fake):
    response = await http.post("/query", content=b"null", headers={"Content-Type": "application/json"})

    assert assert_problem(response, 400)["detail"] == "body: required"
    assert [body for _, body in fake.requests if body != {}] == []


async def test_an_unexpected_failure_is_a_500_problem_without_its_traceback(http, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug, with a secret in its message")

    monkeypatch.setattr(llm, "generate_text", broken)

    response = await http.post("/query", json=VALID)

    problem = assert_problem(response, 500)
    assert (problem["title"], problem["detail"]) == (
        "Internal Server Error",
        "unexpected error; the logs have this request id",
    )
    assert "secret" not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert logged and logged[0].exc_info is not None and "secret" in str(logged[0].exc_info[1])


@dataclasses.dataclass
class _SecretModel:
    id: str = "a model"
    owned_by: str = "someone"
    instruct: str = "a secret"  # not a boolean: jsonschema's message quotes the value


async def _secret_models(*args, **kwargs):
    return [_SecretModel()]


async def _secret_answer(*args, **kwargs):
    return {"text": "a secret answer"}  # no model, no counts


@pytest.mark.parametrize(
    ("method", "path", "module", "name", "work"),
    [
        ("POST", "/query", llm, "generate_text", _secret_answer),  # the flat path's check of the answer
        ("GET", "/models", models, "list_models", _secret_models),  # Connexion's (rest/validators.py)
    ],
)
async def test_an_answer_that_breaks_the_contract_is_a_500_problem_that_does_not_quote_it(
    http, monkeypatch, caplog, method, path, module, name, work
):
    monkeypatch.setattr(module, name, work)
    caplog.set_level(logging.DEBUG, logger="connexion")  # whatever a tier's log setup would let through or not

    response = await http.request(method, path, json=VALID if method == "POST" else None)

    detail = "the answer does not conform to the API specification; the logs have this request id"
    assert assert_problem(response, 500)["detail"] == detail
    assert "secret" not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "problem"]
    assert [(r.levelno, r.status, r.detail) for r in logged] == [(logging.ERROR, 500, detail)]
    assert not [r.getMessage() for r in caplog.records if "secret" in r.getMessage()]
