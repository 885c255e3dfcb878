"""Converse and ConverseStream on the local Bedrock through boto3's own calls: answers, events, Bedrock's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdallm.local_cloud.server import LocalCloud
from tests.local_cloud.conftest import GEMMA_ID, MODEL_ID, bedrock_client


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": text}]}


CHAT = [user("My name is Ada."), assistant("Hello Ada!"), user("What is my name?")]


def error_of(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_every_turn_reaches_the_model_through_the_chat_template(instant_cloud: LocalCloud) -> None:
    answer = bedrock_client(instant_cloud).converse(modelId=MODEL_ID, messages=CHAT)
    text = answer["output"]["message"]["content"][0]["text"]
    assert text == "user: My name is Ada. assistant: Hello Ada! user: What is my name? assistant:"
    assert answer["output"]["message"]["role"] == "assistant"
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"] == {"inputTokens": 14, "outputTokens": 14, "totalTokens": 28}
    assert answer["metrics"]["latencyMs"] >= 0


def test_max_tokens_and_stop_sequences_map_to_stop_reasons(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    short = client.converse(modelId=MODEL_ID, messages=[user("one two")], inferenceConfig={"maxTokens": 2})
    assert (short["stopReason"], short["output"]["message"]["content"][0]["text"]) == ("max_tokens", "user: one")
    stopped = client.converse(
        modelId=MODEL_ID, messages=[user("a b STOP c")], inferenceConfig={"stopSequences": ["STOP"]}
    )
    assert stopped["stopReason"] == "stop_sequence"


def test_system_reaches_a_model_that_takes_it_and_is_refused_for_titan(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    answer = client.converse(modelId=GEMMA_ID, messages=[user("Hi")], system=[{"text": "Be brief."}])
    assert answer["output"]["message"]["content"][0]["text"] == "system: Be brief. user: Hi assistant:"
    status, code, message = error_of(
        lambda: client.converse(modelId=MODEL_ID, messages=[user("Hi")], system=[{"text": "Be brief."}])
    )
    assert (status, code) == (400, "ValidationException")
    assert "system messages" in message


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([], "start with a user message"),
        ([assistant("Hi")], "start with a user message"),
        ([user("a"), user("b")], "alternate between user and assistant"),
        ([user("a"), assistant("b")], "end with a user message"),
        ([{"role": "user", "content": [{"text": "  "}]}], "messages.0.content.0 is blank"),
        ([{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": b"x"}}}]}], "image"),
    ],
)
def test_a_malformed_conversation_is_a_validation_exception(
    instant_cloud: LocalCloud, messages: Any, says: str
) -> None:
    client = bedrock_client(instant_cloud)
    status, code, message = error_of(lambda: client.converse(modelId=MODEL_ID, messages=messages))
    assert (status, code) == (400, "ValidationException")
    assert says in message


def test_bad_inference_settings_are_validation_exceptions(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    status, code, _ = error_of(
        lambda: client.converse(modelId=MODEL_ID, messages=[user("Hi")], inferenceConfig={"maxTokens": 3073})
    )
    assert (status, code) == (400, "ValidationException")
    status, code, _ = error_of(
        lambda: client.converse(modelId=MODEL_ID, messages=[user("Hi")], inferenceConfig={"temperature": 1.5})
    )
    assert (status, code) == (400, "ValidationException")


def test_a_body_that_is_not_strict_json_is_a_validation_exception_naming_why(instant_cloud: LocalCloud) -> None:
    from tests.fakes.raw_http import build_request, send_raw

    port = instant_cloud.bedrock_port
    duplicate = b'{"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "messages": []}'
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body, says in ((duplicate, "messages: duplicate field"), (deep, "nested deeper than 64 levels")):
        for operation in ("converse", "converse-stream"):
            request = build_request("POST", f"/model/{MODEL_ID}/{operation}", [], body, port)
            answer = send_raw(port, request)
            assert (answer.status, answer.headers["x-amzn-errortype"]) == (400, "ValidationException:")
            assert says in json.loads(answer.body)["message"]


def test_an_unknown_model_id_is_resource_not_found(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    status, code, message = error_of(lambda: client.converse(modelId="acme.nonexistent-v1", messages=[user("Hi")]))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert "acme.nonexistent-v1" not in message  # like Bedrock, the answer does not echo the id
    status, code, _ = error_of(lambda: client.converse_stream(modelId="acme.nonexistent-v1", messages=[user("Hi")]))
    assert (status, code) == (404, "ResourceNotFoundException")


def test_the_stream_decodes_in_boto3_event_by_event(instant_cloud: LocalCloud) -> None:
    response = bedrock_client(instant_cloud).converse_stream(modelId=MODEL_ID, messages=[user("one two three")])
    events = list(response["stream"])
    assert events[0] == {"messageStart": {"role": "assistant"}}
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert "".join(d["delta"]["text"] for d in deltas) == "user: one two three assistant:"
    assert {d["contentBlockIndex"] for d in deltas} == {0}
    assert events[-3:-1] == [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
    ]
    assert events[-1]["metadata"]["usage"] == {"inputTokens": 5, "outputTokens": 5, "totalTokens": 10}


def test_a_malformed_stream_request_fails_before_the_stream(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    status, code, _ = error_of(lambda: client.converse_stream(modelId=MODEL_ID, messages=[assistant("Hi")]))
    assert (status, code) == (400, "ValidationException")


@pytest.mark.model
@pytest.mark.parametrize("model_id", [MODEL_ID, GEMMA_ID])
def test_a_real_model_answers_a_conversation(model_cloud: LocalCloud, model_id: str) -> None:
    config = {"maxTokens": 8, "temperature": 0}
    chat = [user("Hi"), assistant("Hello!"), user("Hi")]  # more than one turn: Gemma, a base model, gets the markup
    answer = bedrock_client(model_cloud).converse(modelId=model_id, messages=chat, inferenceConfig=config)
    assert answer["output"]["message"]["content"][0]["text"].strip()
    assert answer["stopReason"] in ("end_turn", "max_tokens")
    usage = answer["usage"]
    assert usage["inputTokens"] > 3  # the chat template's tokens around "Hi"
    assert 1 <= usage["outputTokens"] <= 8
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


@pytest.mark.model
def test_the_instruct_model_streams_the_text_it_would_return(model_cloud: LocalCloud) -> None:
    client = bedrock_client(model_cloud)
    config = {"maxTokens": 6, "temperature": 0}
    whole = client.converse(modelId=MODEL_ID, messages=CHAT, inferenceConfig=config)
    events = list(client.converse_stream(modelId=MODEL_ID, messages=CHAT, inferenceConfig=config)["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-1]["metadata"]["usage"] == whole["usage"]
