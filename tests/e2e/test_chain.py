"""Real generations and real failures through client -> REST -> gRPC -> API Gateway -> Lambda -> Bedrock."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from generated.llm_client import AuthenticatedClient
from generated.llm_client.api.llm import generate_text
from generated.llm_client.models import FinishReason, GenerateRequest, GenerateResponse, Message, MessageRole
from lambdallm.stack import Ports, Stack
from tests.sse import parse_events

pytestmark = [pytest.mark.e2e]


@pytest.mark.model
def test_a_real_generation_crosses_every_tier(model_chain: Stack) -> None:
    client = AuthenticatedClient(
        base_url=model_chain.rest_url, token=model_chain.api_key, raise_on_unexpected_status=True
    )
    request = GenerateRequest(prompt="The capital of France is", max_tokens=6, temperature=0.0)

    answer = generate_text.sync_detailed(client=client, body=request, x_request_id="e2e-real-1")

    assert answer.status_code == 200
    body = answer.parsed
    assert isinstance(body, GenerateResponse)
    assert body.text.strip()
    assert 1 <= body.output_tokens <= 6
    assert body.input_tokens >= 3
    assert body.model == "amazon.titan-text-premier-v1:0"
    assert body.request_id == "e2e-real-1"
    assert answer.headers["X-Request-ID"] == "e2e-real-1"


@pytest.mark.model
@pytest.mark.parametrize("prompt", ["What is the capital of France?", "Tell me a joke."])
def test_a_plain_instruction_gets_an_answer(model_chain: Stack, prompt: str) -> None:
    """The default model is an instruct model served under Titan's id: the prompt reaches it as a user turn, as
    Titan Text takes an instruction (fed raw, it ended at once with an empty answer)."""
    client = AuthenticatedClient(base_url=model_chain.rest_url, token=model_chain.api_key)

    body = generate_text.sync(client=client, body=GenerateRequest(prompt=prompt, max_tokens=8, temperature=0.0))

    assert isinstance(body, GenerateResponse)
    assert body.text.strip()
    assert body.output_tokens > 0


@pytest.mark.model
def test_max_tokens_is_a_hard_limit_reported_as_length(model_chain: Stack) -> None:
    client = AuthenticatedClient(base_url=model_chain.rest_url, token=model_chain.api_key)
    request = GenerateRequest(prompt="Count with me: one, two, three,", max_tokens=2, temperature=0.0)

    body = generate_text.sync(client=client, body=request)

    assert isinstance(body, GenerateResponse)
    assert body.output_tokens == 2
    assert body.finish_reason == FinishReason.LENGTH


@pytest.mark.model
def test_a_request_id_is_generated_when_the_caller_sends_none(model_chain: Stack) -> None:
    answer = httpx.post(
        f"{model_chain.rest_url}/query",
        json={"prompt": "Hello", "max_tokens": 1},
        timeout=60,
        headers=model_chain.auth_headers,
    )

    assert answer.status_code == 200
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"] != ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "Hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "Hi", "max_tokens": 4000}, "max_tokens"),
        ({"prompt": "", "max_tokens": 5}, "prompt"),
        ({"max_tokens": 5}, "prompt, messages"),
        ({"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}, "prompt, messages"),
        ({"messages": [{"role": "assistant", "content": "Hi"}], "max_tokens": 5}, "messages[0].role"),
        ({"prompt": "Hi", "system": "Be brief.", "max_tokens": 5}, "system"),
        ({"prompt": "Hi", "max_tokens": 5, "temperature": 1.5}, "temperature"),
        ({"prompt": "Hi", "max_tokens": 5, "mood": "happy"}, "mood"),
    ],
)
def test_bad_input_is_a_problem_that_names_the_field(instant_chain: Stack, body: dict[str, object], field: str) -> None:
    answer = httpx.post(f"{instant_chain.rest_url}/query", json=body, timeout=10, headers=instant_chain.auth_headers)

    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.json()["detail"]


CHAT = [
    {"role": "user", "content": "My name is Ada."},
    {"role": "assistant", "content": "Hello Ada!"},
    {"role": "user", "content": "What is my name?"},
]


def test_every_turn_and_the_system_text_reach_the_model(instant_chain: Stack) -> None:
    body = {"messages": CHAT, "system": "Be brief.", "max_tokens": 50}
    answer = httpx.post(f"{instant_chain.rest_url}/query", json=body, timeout=10, headers=instant_chain.auth_headers)

    assert answer.status_code == 200, answer.text
    # The instant model echoes the prompt its chat template rendered; Titan takes no system prompt, so the
    # Lambda put it before the first user turn.
    assert answer.json()["text"] == (
        "user: Be brief. My name is Ada. assistant: Hello Ada! user: What is my name? assistant:"
    )
    assert answer.json()["finish_reason"] == "stop"


@pytest.mark.model
def test_a_real_conversation_crosses_every_tier(model_chain: Stack) -> None:
    client = AuthenticatedClient(
        base_url=model_chain.rest_url, token=model_chain.api_key, raise_on_unexpected_status=True
    )
    messages = [Message(role=MessageRole(m["role"]), content=m["content"]) for m in CHAT]
    request = GenerateRequest(messages=messages, system="Answer in a few words.", max_tokens=8, temperature=0.0)

    body = generate_text.sync(client=client, body=request)

    assert isinstance(body, GenerateResponse)
    assert body.text.strip()
    assert 1 <= body.output_tokens <= 8
    assert body.input_tokens > 20  # every turn, through the chat template
    assert body.model == "amazon.titan-text-premier-v1:0"


@pytest.fixture
def chain_without_backend() -> Iterator[Stack]:
    """A REST tier and proxy whose backend URL is a port that is bound but never listens (refuses at once)."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    stack = Stack(
        Ports.any(),
        log=io.StringIO(),
        tiers=("proxy", "rest"),
        extra_env={"LAMBDALLM_PROXY_BACKEND_URL": f"http://127.0.0.1:{closed.getsockname()[1]}"},
    )
    try:
        stack.start()
        stack.wait_ready(path="/health", timeout=60)
        yield stack
    finally:
        stack.stop()
        closed.close()


def test_backend_down_is_a_503_and_the_chain_is_not_ready(chain_without_backend: Stack) -> None:
    answer = httpx.post(
        f"{chain_without_backend.rest_url}/query",
        json={"prompt": "Hi", "max_tokens": 3},
        headers=chain_without_backend.auth_headers,
    )
    ready = httpx.get(f"{chain_without_backend.rest_url}/ready")

    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"]
    assert ready.status_code == 503


def test_bedrest_reports_a_backend_down_in_one_line(chain_without_backend: Stack) -> None:
    bedrest = Path(sys.executable).with_name("bedrest")
    command = [str(bedrest), "--port", str(chain_without_backend.ports.rest), "passive"]
    env = os.environ | {"BEDREST_API_KEY": str(chain_without_backend.api_key)}

    result = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)

    assert result.returncode == 1
    assert result.stderr.startswith("bedrest: HTTP 503 Service Unavailable: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.model
def test_a_slow_backend_is_a_504_not_a_hang(impatient_chain: Stack) -> None:
    body = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,", "max_tokens": 3000, "temperature": 0}

    answer = httpx.post(
        f"{impatient_chain.rest_url}/query", json=body, timeout=30, headers=impatient_chain.auth_headers
    )

    assert answer.status_code == 504
    assert answer.headers["content-type"].startswith("application/problem+json")


PASSIVE_PROMPTS = ["Hi", "Who are you?", "Tell me a story", "What do you think of cloud computing", "I hate you"]


@pytest.mark.model
def test_bedrest_passive_prints_five_real_generations(model_chain: Stack) -> None:
    bedrest = Path(sys.executable).with_name("bedrest")
    command = [str(bedrest), "--port", str(model_chain.ports.rest), "--max-tokens", "3", "passive"]
    env = os.environ | {"BEDREST_API_KEY": str(model_chain.api_key)}

    result = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)

    assert result.returncode == 0, result.stderr
    positions = [result.stdout.find(prompt) for prompt in PASSIVE_PROMPTS]
    assert -1 not in positions and positions == sorted(positions), result.stdout
    assert result.stdout.count("output tokens") == 5


def test_no_prompt_text_reaches_any_tiers_log(instant_chain: Stack) -> None:
    secret = "confidential-7f3a"
    bodies = [
        {"prompt": f"{secret} fine", "max_tokens": 2},
        {"prompt": f"{secret} " + "x" * 32000, "max_tokens": 2},
        {"prompt": f"{secret} hot", "max_tokens": 2, "temperature": 5},
        {"prompt": f"{secret} many stops", "max_tokens": 2, "stop_sequences": [secret] * 5},
    ]
    for body in bodies:
        httpx.post(f"{instant_chain.rest_url}/query", json=body, timeout=10, headers=instant_chain.auth_headers)
    httpx.post(
        f"{instant_chain.rest_url}/query",
        json={},
        headers={"X-Request-ID": f"{secret}!"} | instant_chain.auth_headers,
        timeout=10,
    )
    marker = uuid.uuid4().hex
    httpx.get(f"{instant_chain.rest_url}/health", headers={"X-Request-ID": marker}, timeout=10)

    assert isinstance(instant_chain.log, io.StringIO)
    deadline = time.monotonic() + 10
    while marker not in instant_chain.log.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)  # the supervisor relays the tiers' output from its own threads
    assert marker in instant_chain.log.getvalue()
    assert secret not in instant_chain.log.getvalue()


@pytest.fixture
def chain_with_a_wrong_backend_path() -> Iterator[Stack]:
    """The whole chain, but the proxy asks the API Gateway under a stage path it does not serve."""
    cloud = Stack(Ports.any(), engine="instant", log=io.StringIO(), tiers=("local-cloud",))
    front = Stack(Ports.any(), log=io.StringIO(), tiers=("proxy", "rest"))
    try:
        cloud.start()
        front.extra_env = {"LAMBDALLM_PROXY_BACKEND_URL": f"http://127.0.0.1:{cloud.ports.apigw}/prod"}
        front.start()
        front.wait_ready(path="/health", timeout=60)
        front.ports = replace(front.ports, apigw=cloud.ports.apigw)
        yield front
    finally:
        front.stop()
        cloud.stop()


def test_a_backend_url_that_answers_404_is_not_ready(chain_with_a_wrong_backend_path: Stack) -> None:
    gateway = f"http://127.0.0.1:{chain_with_a_wrong_backend_path.ports.apigw}/query"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the gateway opens once the model is loaded
        with contextlib.suppress(httpx.TransportError):
            if httpx.post(gateway, json={}, timeout=5).status_code == 400:
                break
        time.sleep(0.1)

    ready = httpx.get(f"{chain_with_a_wrong_backend_path.rest_url}/ready", timeout=10)

    assert ready.status_code == 503


@pytest.mark.parametrize("api", ["query", "openai"])
@pytest.mark.parametrize("shape", ["prompt", "messages", "tools"])
def test_the_largest_valid_request_json_escaped_crosses_every_tier(instant_chain: Stack, shape: str, api: str) -> None:
    from lambdallm.rest.app import SPEC
    from lambdallm.rest.body_limit import largest_request_bytes, largest_requests, openai_form

    prompt, conversation, with_tools = largest_requests(SPEC)
    largest = {"prompt": prompt, "messages": conversation, "tools": with_tools}[shape]
    # Every field at its bound but `model`: an id of 2048 characters is valid and served by no backend (a 404).
    # Titan Text takes no tools; Gemma does.
    largest["model"] = "google.gemma-3-270m" if shape == "tools" else "amazon.titan-text-premier-v1:0"
    path = "/query"
    if api == "openai":  # /v1 shares the body limit: the same request in OpenAI's shape fits it too
        largest, path = openai_form(largest), "/v1/completions" if shape == "prompt" else "/v1/chat/completions"
    headers = {"Content-Type": "application/json"} | instant_chain.auth_headers
    # Every character a 12-byte escaped surrogate pair (json.dumps's default): about 390 KB, 940 KB with tools.
    body = json.dumps(largest, indent=2)
    assert len(body.encode()) <= largest_request_bytes(SPEC)  # within the default max_body_bytes

    response = httpx.post(f"{instant_chain.rest_url}{path}", content=body, headers=headers, timeout=60)

    if shape == "tools":  # every tier took it, up to the model itself: the instant (echo) engine calls no tool
        assert response.status_code == 400, response.text[:300]
        detail = response.json()["error"]["message"] if api == "openai" else response.json()["detail"]
        assert detail.endswith("the local echo engine) doesn't support tool use."), detail
        return
    assert response.status_code == 200, response.text[:300]
    assert response.json()["usage" if api == "openai" else "input_tokens"]


@pytest.mark.parametrize("accept", ["text/event-stream", "application/json"])
def test_a_long_answer_at_the_instant_models_pace_arrives_whole(instant_chain: Stack, accept: str) -> None:
    # The instant model sends its pieces faster than any tier passes them on: every piece, and the end of each
    # stream, arrives while the tier in front is still busy with the ones before.
    words = [f"w{n}" for n in range(400)]
    body = {"prompt": " ".join(words), "max_tokens": 400}
    headers = instant_chain.auth_headers | {"Accept": accept}

    answer = httpx.post(f"{instant_chain.rest_url}/query", json=body, headers=headers, timeout=30)

    assert answer.status_code == 200, answer.text
    if accept == "application/json":
        assert (answer.json()["text"], answer.json()["output_tokens"]) == (" ".join(words), 400)
        return
    events = parse_events(answer.text)
    texts = [data["text"] for event, data in events if event == "text"]
    assert "".join(texts) == " ".join(words)  # none lost; pieces made at once go on as one event (stream_batch_ms)
    # Pieces made together travel together at every tier (the local Bedrock's events, the function's lines, the
    # relays' writes): the first event starts the answer, and there are fewer events than pieces. That the first
    # piece of a model slower than the window is never held is the function's test (tests/lambda) and the
    # trickling model's (tests/local_cloud/test_streaming.py).
    assert texts[0].startswith("w0") and len(texts) < 400
    assert events[-1][0] == "done" and events[-1][1]["output_tokens"] == 400
