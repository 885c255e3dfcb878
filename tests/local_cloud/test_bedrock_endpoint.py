"""The local Bedrock Runtime through a plain boto3 client: Titan answers, the stream, Bedrock-shaped errors."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdallm.local_cloud.server import LocalCloud
from tests.local_cloud.conftest import MODEL_ID, GatedEngine, bedrock_client


def invoke(client: Any, text: str, model_id: str = MODEL_ID, **config: Any) -> dict[str, Any]:
    body = {"inputText": text, "textGenerationConfig": config}
    return json.loads(client.invoke_model(modelId=model_id, body=json.dumps(body))["body"].read())


def stream(client: Any, text: str, **config: Any) -> list[dict[str, Any]]:
    body = json.dumps({"inputText": text, "textGenerationConfig": config})
    response = client.invoke_model_with_response_stream(modelId=MODEL_ID, body=body)
    assert response["contentType"] == "application/json"
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def error_of(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_ping_answers_once_the_model_is_loaded(instant_cloud: LocalCloud) -> None:
    with urllib.request.urlopen(f"{instant_cloud.bedrock_url}/ping") as response:
        assert (response.status, json.load(response)) == (200, {"status": "ready"})


def test_invoke_model_answers_in_titan_format(instant_cloud: LocalCloud) -> None:
    answer = invoke(bedrock_client(instant_cloud), "red green blue", maxTokenCount=2)
    assert answer == {
        "inputTextTokenCount": 3,
        "results": [{"tokenCount": 2, "outputText": "red green", "completionReason": "LENGTH"}],
    }


def test_a_stop_sequence_is_stop_criteria_met(instant_cloud: LocalCloud) -> None:
    result = invoke(bedrock_client(instant_cloud), "a b STOP c", stopSequences=["STOP"])["results"][0]
    assert (result["outputText"], result["completionReason"]) == ("a b ", "STOP_CRITERIA_MET")


def test_the_model_id_may_be_an_arn(instant_cloud: LocalCloud) -> None:
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL_ID}"
    assert invoke(bedrock_client(instant_cloud), "hi", model_id=arn)["results"][0]["outputText"] == "hi"


def test_the_response_stream_decodes_in_boto3(instant_cloud: LocalCloud) -> None:
    chunks = stream(bedrock_client(instant_cloud), "one two three", maxTokenCount=8)
    assert "".join(c["outputText"] for c in chunks) == "one two three"
    assert [c["totalOutputTextTokenCount"] for c in chunks] == [1, 2, 3, 3]
    assert chunks[-1]["completionReason"] == "FINISH"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 3
    assert chunks[-1]["inputTextTokenCount"] == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 0}}, "maxTokenCount"),
        ({"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 3073}}, "maxTokenCount"),
        ({"inputText": "hi", "textGenerationConfig": {"temperature": 2}}, "temperature"),
        ({"inputText": "hi", "textGenerationConfig": {"topK": 2}}, "topK"),
        ({"inputText": "hi", "prompt": "x"}, "prompt"),
        ({"inputText": ""}, "inputText"),
    ],
)
def test_bad_input_is_a_validation_exception(instant_cloud: LocalCloud, body: dict[str, Any], message: str) -> None:
    client = bedrock_client(instant_cloud)
    status, code, text = error_of(lambda: client.invoke_model(modelId=MODEL_ID, body=json.dumps(body)))
    assert (status, code) == (400, "ValidationException")
    assert message in text


def test_an_unknown_model_is_resource_not_found(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    status, code, _ = error_of(lambda: invoke(client, "hi", model_id="meta.llama3-8b-instruct-v1:0"))
    assert (status, code) == (404, "ResourceNotFoundException")


def test_beyond_the_queue_requests_are_throttled(gated: tuple[LocalCloud, GatedEngine]) -> None:
    cloud, engine = gated
    client = bedrock_client(cloud)
    outcomes: list[Any] = []
    lock = threading.Condition()

    def call(text: str) -> None:
        try:
            outcome: Any = invoke(client, text)["results"][0]["outputText"]
        except ClientError as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)
            lock.notify_all()

    threads = [threading.Thread(target=call, args=("first",))]
    threads[0].start()
    assert engine.started.wait(10)
    # One generating; of the next two, one waits in the queue (size 1) and the other is refused at once.
    threads += [threading.Thread(target=call, args=(text,)) for text in ("second", "third")]
    for thread in threads[1:]:
        thread.start()
    with lock:
        assert lock.wait_for(lambda: len(outcomes) == 1, timeout=10)
    (refused,) = outcomes
    assert isinstance(refused, client.exceptions.ThrottlingException)
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(client.exceptions.ThrottlingException):
        client.invoke_model_with_response_stream(modelId=MODEL_ID, body=json.dumps({"inputText": "fourth"}))
    engine.gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(o for o in outcomes if isinstance(o, str))[0] == "first"
    assert len([o for o in outcomes if isinstance(o, str)]) == 2


@pytest.mark.model
def test_gemma_generates_with_token_counts(gemma_cloud: LocalCloud) -> None:
    answer = invoke(bedrock_client(gemma_cloud), "The capital of France is", maxTokenCount=3, temperature=0)
    result = answer["results"][0]
    assert answer["inputTextTokenCount"] == 6  # <bos> + 5 tokens
    assert result["tokenCount"] == 3
    assert result["completionReason"] == "LENGTH"
    assert result["outputText"].strip()


@pytest.mark.model
def test_gemma_streams_the_same_text_it_would_return(gemma_cloud: LocalCloud) -> None:
    client = bedrock_client(gemma_cloud)
    whole = invoke(client, "Once upon a time", maxTokenCount=4, temperature=0)["results"][0]["outputText"]
    chunks = stream(client, "Once upon a time", maxTokenCount=4, temperature=0)
    assert "".join(c["outputText"] for c in chunks) == whole
    assert chunks[-1]["completionReason"] == "LENGTH"


@pytest.mark.model
def test_gemma_rejects_a_prompt_longer_than_its_context_and_serves_on(gemma_cloud: LocalCloud) -> None:
    client = bedrock_client(gemma_cloud)
    status, code, message = error_of(lambda: invoke(client, "word " * 600, maxTokenCount=1))
    assert (status, code) == (400, "ValidationException")
    assert "context" in message
    assert invoke(client, "The sky is", maxTokenCount=2)["results"][0]["tokenCount"] == 2
