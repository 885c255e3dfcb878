"""The bench's one-hop reference gateway (issue 28) does what the gateway it stands for does, so that the chain is
held to a fair reference: the key checked, the conversation passed to Converse, an OpenAI-shaped answer."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from lambdallm.bench.one_hop import PATH, chat_body, create_app

KEY = "sk-reference"


class FakeConverse:
    """Converse's answer to any call, and the calls it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def converse(self, **call: Any) -> dict[str, Any]:
        self.calls.append(call)
        content = [{"text": "a keeper"}, {"text": " and a light"}]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "max_tokens",
            "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
        }


def test_it_answers_a_key_holder_in_openai_shape_from_converse() -> None:
    bedrock = FakeConverse()
    client = TestClient(create_app(bedrock, "amazon.titan-text-premier-v1:0", KEY))

    answer = client.post(PATH, json=chat_body("Tell me a story.", 4), headers={"Authorization": f"Bearer {KEY}"})

    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "amazon.titan-text-premier-v1:0"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "a keeper and a light"}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    assert bedrock.calls == [
        {
            "modelId": "amazon.titan-text-premier-v1:0",
            "messages": [{"role": "user", "content": [{"text": "Tell me a story."}]}],
            "inferenceConfig": {"maxTokens": 4, "temperature": 0.0},
        }
    ]


def test_a_system_message_goes_to_converse_as_system() -> None:
    bedrock = FakeConverse()
    client = TestClient(create_app(bedrock, "model", KEY))
    body = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}

    assert client.post(PATH, json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert bedrock.calls[0]["system"] == [{"text": "Be brief."}]
    assert bedrock.calls[0]["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]


def test_a_wrong_or_missing_key_is_refused_before_converse() -> None:
    bedrock = FakeConverse()
    client = TestClient(create_app(bedrock, "model", KEY))

    wrong = client.post(PATH, json=chat_body("Hi", 1), headers={"Authorization": "Bearer sk-other"})
    missing = client.post(PATH, json=chat_body("Hi", 1))

    assert wrong.status_code == 401 and missing.status_code in (401, 403)
    assert bedrock.calls == []
