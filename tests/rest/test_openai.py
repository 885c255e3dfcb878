"""/v1 (specs/openai.yaml) over real HTTP against a scripted LlmService: the request each OpenAI call becomes, its
answers in OpenAI's shapes, and every error as OpenAI's error object (the openai package's exceptions included)."""

import asyncio
import json

import grpc
import httpx
import openai
import pytest

from generated.llm.v1 import llm_pb2
from tests.fakes.llm_service import BASE_MODEL, DEFAULT_MODEL, Failure, FakeLlmService, fake_llm_service
from tests.fakes.stack import API_KEY, AUTHORIZATION, running_rest

CHAT = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Capital of France?"}], "max_tokens": 8}


@pytest.fixture
def service():
    return FakeLlmService()


@pytest.fixture
async def v1(service):
    async with fake_llm_service(service) as target, running_rest(target) as url:
        yield f"{url}/v1"


@pytest.fixture
async def http(v1):
    async with httpx.AsyncClient(base_url=v1, timeout=10, headers=AUTHORIZATION) as client:
        yield client


@pytest.fixture
async def client(v1):
    async with openai.AsyncOpenAI(base_url=v1, api_key=API_KEY, max_retries=0) as client:
        yield client


def assert_openai_error(response, status, param=None, code=None, kind="invalid_request_error"):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (kind, param, code), error
    return error


async def test_a_chat_completion_is_openais_object_with_usage(client, service):
    answer = await client.chat.completions.create(
        model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Capital of France?"}], max_tokens=8
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "Paris is the capital."
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (7, 3, 10)
    assert answer.model == DEFAULT_MODEL
    assert service.requests[-1].max_tokens == 8


async def test_system_and_developer_messages_become_the_system_text_and_parts_are_joined(client, service):
    await client.chat.completions.create(
        model=BASE_MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": "No jokes."},
            {"role": "user", "content": "Bye"},
        ],
        max_completion_tokens=5,
        temperature=0,
        top_p=0.5,
        stop="\n",
        seed=3,
        user="someone",
    )
    sent = service.requests[-1]
    assert sent.system == "Be brief.\n\nNo jokes."
    assert [(m.role, m.content) for m in sent.messages] == [
        (llm_pb2.ROLE_USER, "Hi\nthere"),
        (llm_pb2.ROLE_ASSISTANT, "Hello."),
        (llm_pb2.ROLE_USER, "Bye"),
    ]
    assert (sent.model, sent.max_tokens, sent.temperature, sent.top_p) == (BASE_MODEL, 5, 0, 0.5)
    assert list(sent.stop_sequences) == ["\n"]
    assert not sent.continuation


async def test_max_tokens_defaults_to_the_limit(http, service):
    body = {"model": DEFAULT_MODEL, "messages": CHAT["messages"]}
    assert (await http.post("/chat/completions", json=body)).status_code == 200
    assert service.requests[-1].max_tokens == 3072


async def test_a_streamed_chat_ends_with_usage_then_done(client):
    stream = await client.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris is the capital."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 10
    assert all(c.object == "chat.completion.chunk" for c in chunks)


async def test_the_stream_is_sse_lines_ending_with_done(http):
    response = await http.post("/chat/completions", json=CHAT | {"stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: {") for line in lines[:-1])
    assert all(json.loads(line[6:]).get("usage") is None for line in lines[:-1])  # no include_usage


async def test_a_failure_after_the_stream_began_is_an_error_event(http, service):
    service.failure = Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "too slow", after=1)
    response = await http.post("/chat/completions", json=CHAT | {"stream": True})
    last = response.text.strip().split("\n\n")[-1]
    assert json.loads(last[6:])["error"]["type"] == "server_error"
    assert "[DONE]" not in response.text


async def test_a_completion_continues_the_prompt_as_it_is(client, service):
    answer = await client.completions.create(model=BASE_MODEL, prompt="The capital of France is", stop=["."])
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "Paris is the capital."
    sent = service.requests[-1]
    assert (sent.prompt, sent.continuation, sent.max_tokens, sent.model) == (
        "The capital of France is",
        True,
        16,
        BASE_MODEL,
    )
    assert list(sent.stop_sequences) == ["."]


async def test_models_are_listed_default_first_and_retrieved(client):
    listed = [model async for model in client.models.list()]
    assert [(m.id, m.object, m.owned_by) for m in listed] == [
        (DEFAULT_MODEL, "model", "amazon"),
        (BASE_MODEL, "model", "google"),
    ]
    assert (await client.models.retrieve(BASE_MODEL)).id == BASE_MODEL


async def test_an_unknown_model_is_not_found(client, http):
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(**CHAT | {"model": "gpt-4o"})
    assert caught.value.code == "model_not_found" and "gpt-4o" in caught.value.message
    error = assert_openai_error(await http.get("/models/nope"), 404, "model", "model_not_found")
    assert DEFAULT_MODEL in error["message"]


async def test_a_wrong_key_is_openais_authentication_error(v1, http):
    async with openai.AsyncOpenAI(base_url=v1, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.models.list()
    assert caught.value.code == "invalid_api_key"
    async with httpx.AsyncClient(base_url=v1) as anonymous:
        response = await anonymous.get("/models")
    assert_openai_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": []}, "tools"),
        ({"max_tokens": 5000}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
async def test_a_field_not_served_is_a_400_naming_it(http, change, param):
    assert_openai_error(await http.post("/chat/completions", json=CHAT | change), 400, param=param)


async def test_fields_clients_send_by_default_are_accepted(http):
    defaults = {"n": 1, "frequency_penalty": 0, "presence_penalty": 0, "logprobs": False, "stream": False}
    defaults |= {"response_format": {"type": "text"}, "parallel_tool_calls": True, "stop": None}
    response = await http.post("/chat/completions", json=CHAT | defaults)
    assert response.status_code == 200, response.text


async def test_n_2_is_openais_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**CHAT, n=2)
    assert caught.value.param == "n"


async def test_the_proxys_400_names_the_message_as_the_client_numbered_it(http, service):
    service.failure = Failure(grpc.StatusCode.INVALID_ARGUMENT, "messages[1].role: must be assistant")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    error = assert_openai_error(
        await http.post("/chat/completions", json=CHAT | {"messages": messages}), 400, "messages[2].role"
    )
    assert error["message"].startswith("messages[2].role: ")
    service.failure = Failure(grpc.StatusCode.INVALID_ARGUMENT, "stop_sequences: each a string of 1 to 100 characters")
    assert_openai_error(await http.post("/chat/completions", json=CHAT), 400, "stop")
    service.failure = Failure(grpc.StatusCode.INVALID_ARGUMENT, "system: a string of 1 to 8000 characters")
    error = assert_openai_error(await http.post("/chat/completions", json=CHAT), 400, "messages")
    assert error["message"] == "messages: the system and developer messages joined: a string of 1 to 8000 characters"
    service.failure = Failure(grpc.StatusCode.INVALID_ARGUMENT, "max_tokens: required, an integer from 1 to 3072")
    body = CHAT | {"max_completion_tokens": 5}
    assert_openai_error(await http.post("/chat/completions", json=body), 400, "max_completion_tokens")


async def test_a_conversation_of_system_messages_only_is_a_400(http):
    body = CHAT | {"messages": [{"role": "system", "content": "s"}]}
    assert_openai_error(await http.post("/chat/completions", json=body), 400, "messages")


async def test_a_busy_model_is_a_429_with_retry_after(client, service):
    service.failure = Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, "the model is busy", (("retry-after", "2"),))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(**CHAT)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("code", "status"),
    [(grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504), (grpc.StatusCode.INTERNAL, 502)],
)
async def test_a_failure_behind_is_a_5xx_server_error(http, service, code, status):
    service.failure = Failure(code, "down")
    assert_openai_error(await http.post("/chat/completions", json=CHAT), status, kind="server_error")


async def test_bad_json_and_unknown_urls_are_openai_errors_and_query_keeps_problems(http):
    response = await http.post("/chat/completions", content=b"{", headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400)
    assert_openai_error(await http.get("/nowhere"), 404)
    query = await http.post(str(http.base_url).replace("/v1", "/query"), json={"max_tokens": 1})
    assert query.headers["content-type"] == "application/problem+json"


async def test_a_body_over_the_limit_is_an_openai_413(http):
    response = await http.post(
        "/chat/completions", content=b" " * 10_000_000, headers={"Content-Type": "application/json"}
    )
    error = assert_openai_error(response, 413)
    assert "request body exceeds" in error["message"]


async def test_v1_requests_are_counted_under_their_path_templates(http, v1):
    await http.get("/models/nope")
    await http.post("/chat/completions", json=CHAT)
    scraped = (await http.get(v1.replace("/v1", "/metrics"))).text
    assert 'route="/v1/models/{model}"' in scraped
    assert 'route="/v1/chat/completions"' in scraped


async def test_a_model_id_over_its_bound_is_a_400_naming_it(http):
    assert_openai_error(await http.get("/models/" + "m" * 3000), 400, "model")
    assert_openai_error(await http.post("/chat/completions", json=CHAT | {"model": "my model"}), 400, "model")


async def test_a_completion_takes_stream_false_and_refuses_a_stream(http):
    body = {"model": BASE_MODEL, "prompt": "Once", "stream": False}
    assert (await http.post("/completions", json=body)).status_code == 200
    assert_openai_error(await http.post("/completions", json=body | {"stream": True}), 400, "stream")


async def test_a_client_that_hangs_up_mid_stream_cancels_the_grpc_stream(http, service):
    service.gate = asyncio.Event()  # never set: the stream stays open after its first piece
    async with http.stream("POST", "/chat/completions", json=CHAT | {"stream": True}) as response:
        lines = response.aiter_lines()
        assert (await asyncio.wait_for(anext(lines), 10)).startswith("data: {")
    await asyncio.wait_for(service.cancelled.wait(), 5)


@pytest.mark.parametrize(
    ("content", "param"),
    [(" \n ", "messages[0].content"), ([{"type": "text", "text": ""}], "messages[0].content[0].text")],
)
async def test_blank_content_is_a_400_naming_the_message_before_the_model(http, service, content, param):
    body = CHAT | {"messages": [{"role": "user", "content": content}]}
    assert_openai_error(await http.post("/chat/completions", json=body), 400, param)
    assert service.requests == []
