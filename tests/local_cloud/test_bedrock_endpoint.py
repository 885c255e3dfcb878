"""The local Bedrock Runtime through a plain boto3 client: Titan answers, the stream, Bedrock-shaped errors."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from lambdallm.local_cloud.server import LocalCloud
from tests.local_cloud.conftest import GEMMA_ID, MODEL_ID, GatedEngine, bedrock_client


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
        ({"inputText": "x" * 50_001}, "#/inputText: expected maxLength: 50000"),
        ({"inputText": "hi", "textGenerationConfig": {"stopSequences": ["a", "b", "c", "d", "e"]}}, "maxItems: 4"),
        ({"inputText": "hi", "textGenerationConfig": {"stopSequences": ["s" * 101]}}, "maxLength: 100"),
    ],
)
def test_bad_input_is_a_validation_exception(instant_cloud: LocalCloud, body: dict[str, Any], message: str) -> None:
    client = bedrock_client(instant_cloud)
    status, code, text = error_of(lambda: client.invoke_model(modelId=MODEL_ID, body=json.dumps(body)))
    assert (status, code) == (400, "ValidationException")
    assert message in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputText": "Hi", "inputText": "Ho"}', "inputText: duplicate field"),
        (b'{"inputText": "Hi", "textGenerationConfig": {"temperature": NaN}}', "NaN is not a JSON number"),
        (b'{"inputText": "\\ud800"}', "lone surrogate"),
        (b'{"inputText": "Hi", "textGenerationConfig": {"maxTokenCount": 1' + b"0" * 5000 + b"}}", "400 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        ('{"inputText": "Hi"}'.encode("utf-16"), "not UTF-8"),
    ],
)
def test_a_body_that_is_not_strict_json_is_a_validation_exception_naming_why(
    instant_cloud: LocalCloud, body: bytes, message: str
) -> None:
    client = bedrock_client(instant_cloud)
    for call in (client.invoke_model, client.invoke_model_with_response_stream):
        status, code, text = error_of(lambda: call(modelId=MODEL_ID, body=body))  # noqa: B023
        assert (status, code) == (400, "ValidationException")
        assert message in text


@pytest.mark.parametrize("model_id", ["meta.llama3-8b-instruct-v1:0", "amazon.titan-text-express-v1"])
def test_a_model_that_is_not_served_is_resource_not_found(instant_cloud: LocalCloud, model_id: str) -> None:
    client = bedrock_client(instant_cloud)
    status, code, _ = error_of(lambda: invoke(client, "hi", model_id=model_id))
    assert (status, code) == (404, "ResourceNotFoundException")


def test_a_validation_message_never_echoes_the_value(instant_cloud: LocalCloud) -> None:
    client = bedrock_client(instant_cloud)
    for config in ({"temperature": 7.25}, {"topP": 7.25}):
        _, code, message = error_of(lambda: invoke(client, "secret", **config))  # noqa: B023
        assert code == "ValidationException"
        assert "7.25" not in message
    _, _, message = error_of(lambda: invoke(client, "secret" * 10_000))
    assert "secret" not in message


def test_a_body_over_bedrocks_limit_is_refused_without_reading_it_whole(instant_cloud: LocalCloud) -> None:
    from lambdallm.local_cloud.bedrock_errors import MAX_BODY_BYTES
    from tests.local_cloud.test_apigateway import raw_post

    port, path = int(instant_cloud.bedrock_url.rsplit(":", 1)[1]), f"/model/{MODEL_ID}/invoke"
    sized = raw_post(port, path, f"Content-Length: {MAX_BODY_BYTES + 1}\r\n", b"")
    chunk = b"x" * 1_000_000
    chunks = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    chunked = raw_post(port, path, "Transfer-Encoding: chunked\r\n", chunks * (MAX_BODY_BYTES // len(chunk) + 1))
    for status, body in (sized, chunked):
        assert status == 400
        assert f"maxLength: {MAX_BODY_BYTES}" in json.loads(body)["message"]


def test_log_lines_carry_the_request_id_bedrock_answers_with(instant_cloud: LocalCloud) -> None:
    from lambdallm import logs

    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(logs.formatter("local-cloud").format(record)))

    logger = logging.getLogger("lambdallm.local_cloud.bedrock")
    handler = Collect()
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        body = json.dumps({"inputText": "hello there"})
        response = bedrock_client(instant_cloud).invoke_model(modelId=MODEL_ID, body=body)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert request_id in [line["request_id"] for line in lines if line["msg"] == "generated"]


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
def test_the_instruct_model_answers_an_instruction_given_as_input_text(model_cloud: LocalCloud) -> None:
    """Titan Text follows an instruction given as inputText; an instruct model fed it raw ended at once ("")."""
    prompt = "What is the capital of France?"
    answer = invoke(bedrock_client(model_cloud), prompt, MODEL_ID, maxTokenCount=3, temperature=0)
    result = answer["results"][0]
    assert answer["inputTextTokenCount"] > len(prompt.split())  # the user turn's markup is read too
    assert result["tokenCount"] == 3
    assert result["completionReason"] == "LENGTH"
    assert result["outputText"].strip()


@pytest.mark.model
def test_the_base_model_continues_text_as_it_is_through_either_api(model_cloud: LocalCloud) -> None:
    """Gemma 3 270M is a base model: an inputText, or a Converse request of one user turn, is text it continues
    (no chat template around it); a conversation with system text is still rendered through the template."""
    client, text = bedrock_client(model_cloud), "The capital of France is"
    invoked = invoke(client, text, GEMMA_ID, maxTokenCount=3, temperature=0)
    config = {"maxTokens": 3, "temperature": 0}
    conversed = client.converse(
        modelId=GEMMA_ID, messages=[{"role": "user", "content": [{"text": text}]}], inferenceConfig=config
    )
    system = [{"text": "Be brief."}]
    chat = client.converse(
        modelId=GEMMA_ID,
        messages=[{"role": "user", "content": [{"text": text}]}],
        system=system,
        inferenceConfig=config,
    )
    assert invoked["inputTextTokenCount"] == conversed["usage"]["inputTokens"] <= len(text.split()) + 1  # BOS
    assert invoked["results"][0]["outputText"] == conversed["output"]["message"]["content"][0]["text"]
    assert chat["usage"]["inputTokens"] > conversed["usage"]["inputTokens"] + 4  # the turn markup and the system


@pytest.mark.model
def test_the_stream_carries_the_same_text_the_answer_would(model_cloud: LocalCloud) -> None:
    client = bedrock_client(model_cloud)
    whole = invoke(client, "Once upon a time", maxTokenCount=4, temperature=0)["results"][0]["outputText"]
    chunks = stream(client, "Once upon a time", maxTokenCount=4, temperature=0)
    assert "".join(c["outputText"] for c in chunks) == whole
    assert chunks[-1]["completionReason"] == "LENGTH"


@pytest.mark.model
def test_a_prompt_longer_than_the_context_is_a_validation_error_and_the_model_serves_on(
    model_cloud: LocalCloud,
) -> None:
    client = bedrock_client(model_cloud)
    status, code, message = error_of(lambda: invoke(client, "word " * 600, maxTokenCount=1))
    assert (status, code) == (400, "ValidationException")
    assert "context" in message
    assert invoke(client, "The sky is", maxTokenCount=2)["results"][0]["tokenCount"] == 2


def test_a_caller_that_hangs_up_is_dropped_without_an_error_in_the_log(
    gated: tuple[LocalCloud, GatedEngine], caplog: pytest.LogCaptureFixture
) -> None:
    cloud, engine = gated
    body = {"inputText": "left behind", "textGenerationConfig": {"maxTokenCount": 2}}
    with pytest.raises(httpx.ReadTimeout):  # the model is held: the caller gives up and hangs up
        httpx.post(f"{cloud.bedrock_url}/model/{MODEL_ID}/invoke", json=body, timeout=0.5)
    engine.gate.set()

    answer = httpx.post(f"{cloud.bedrock_url}/model/{MODEL_ID}/invoke", json=body, timeout=30)

    assert answer.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
