"""The official openai package against the running chain on the real models, through /v1: every OpenAI call goes
client -> REST -> gRPC proxy -> API Gateway -> Lambda -> Bedrock like POST /query, and fails as openai's own
exception classes."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.model]
INSTRUCT = "amazon.titan-text-premier-v1:0"
BASE = "google.gemma-3-270m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(model_chain: Stack) -> Iterator[openai.OpenAI]:
    # No retries: a wrong status would otherwise cost three requests and hide in the retries.
    with openai.OpenAI(base_url=f"{model_chain.rest_url}/v1", api_key=model_chain.api_key, max_retries=0) as client:
        yield client


def test_a_chat_completion_answers_with_usage(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=INSTRUCT,
        messages=[{"role": "system", "content": "Answer in one short sentence."}, *QUESTION],
        max_tokens=12,
        temperature=0,
    )
    assert answer.object == "chat.completion"
    assert answer.model == INSTRUCT
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    usage = answer.usage
    assert usage is not None
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_streamed_chat_completion_ends_with_the_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=INSTRUCT, messages=QUESTION, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] in ("stop", "length")
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert 1 <= last.usage.completion_tokens <= 12
    whole = client.chat.completions.create(model=INSTRUCT, messages=QUESTION, max_tokens=12, temperature=0)
    assert text == whole.choices[0].message.content  # greedy: the stream is the whole answer in pieces


def test_a_completion_continues_the_text_on_the_base_model(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=BASE, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert answer.object == "text_completion"
    assert answer.model == BASE
    assert answer.choices[0].text.strip()
    assert answer.usage is not None and 1 <= answer.usage.completion_tokens <= 6


def test_the_model_list_is_what_the_backend_serves_default_first(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [model.id for model in models][:1] == [INSTRUCT]
    assert BASE in {model.id for model in models}
    assert all(model.object == "model" and model.owned_by for model in models)
    assert client.models.retrieve(BASE).id == BASE


def test_a_wrong_key_is_an_authentication_error(model_chain: Stack) -> None:
    stranger = openai.OpenAI(base_url=f"{model_chain.rest_url}/v1", api_key="wrong-key", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError) as caught:
        stranger.chat.completions.create(model=INSTRUCT, messages=QUESTION, max_tokens=4)
    assert caught.value.code == "invalid_api_key"


def test_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_two_answers_are_a_bad_request_naming_n(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=INSTRUCT, messages=QUESTION, max_tokens=4, n=2)
    assert caught.value.param == "n"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        # Every turn within its own bound, all of them together over the 32000 characters a conversation holds.
        (
            [
                {"role": "user", "content": "a" * 11000},
                {"role": "assistant", "content": "b" * 11000},
                {"role": "user", "content": "c" * 11000},
            ],
            "messages",
        ),
        # Two user turns in a row, after a system message: the turn is named as the client numbered it.
        ([{"role": "system", "content": "Be brief."}, *QUESTION, *QUESTION], "messages[2].role"),
    ],
)
def test_a_conversation_the_backend_refuses_is_a_bad_request(
    client: openai.OpenAI, messages: list[dict[str, str]], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=INSTRUCT, messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert caught.value.param == param
