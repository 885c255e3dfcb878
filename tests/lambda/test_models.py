"""Model choice in the Lambda: the allowlist from its environment, GET /models, a request's `model` (404 outside
the allowlist), and which Bedrock API each model's prompt goes through."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llm_lambda import handler as handler_module
from llm_lambda.config import ConfigError, FunctionConfig
from llm_lambda.handler import Function
from llm_lambda.models import foundation_id, owned_by, takes_invoke_model

NOVA, GEMMA = "us.amazon.nova-micro-v1:0", "google.gemma-3-270m"
CLAUDE_PROFILE = "global.anthropic.claude-haiku-4-5-20251001-v1:0"
EVENTS = Path(__file__).parent.parent / "events"
CONFIG = FunctionConfig(
    endpoint_url="http://127.0.0.1:9",
    access_key_id="testing",
    secret_access_key="testing",
    other_model_ids=(NOVA, GEMMA),
    base_model_ids=(GEMMA,),
)


def load_event(name: str, body: Any = None) -> dict[str, Any]:
    """A proxy event from tests/events/ (the `lambda` folder cannot be imported: its name is a keyword)."""
    event = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    if body is not None:
        event["body"], event["isBase64Encoded"] = json.dumps(body), False
    return event


@pytest.fixture(scope="module")
def function() -> Function:
    return Function(CONFIG)


@pytest.fixture
def stubbed(function: Function) -> Any:
    with Stubber(function.bedrock) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def models_event(accept: str | None = None) -> dict[str, Any]:
    event = load_event("query.json")
    event |= {"resource": "/models", "path": "/models", "httpMethod": "GET", "body": None}
    if accept is not None:
        event["headers"]["Accept"] = accept
        event["multiValueHeaders"]["Accept"] = [accept]
    return event


def query(body: dict[str, Any]) -> dict[str, Any]:
    return load_event("query.json", {"max_tokens": 4, **body})


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def converse_answer(text: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "max_tokens",
        "usage": {"inputTokens": 5, "outputTokens": 4, "totalTokens": 9},
        "metrics": {"latencyMs": 1},
    }


def test_get_models_lists_the_allowlist_default_first(function: Function, context: Any) -> None:
    status, body = answer(function.lambda_handler(models_event(), context))
    assert status == 200
    assert body == {
        "models": [
            {"id": "amazon.titan-text-premier-v1:0", "owned_by": "amazon", "instruct": True},
            {"id": NOVA, "owned_by": "amazon", "instruct": True},
            {"id": GEMMA, "owned_by": "google", "instruct": False},
        ]
    }


def test_get_models_refuses_an_accept_without_json(function: Function, context: Any) -> None:
    status, body = answer(function.lambda_handler(models_event("text/html"), context))
    assert (status, body["detail"]) == (406, "accept: must allow application/json")


def test_a_model_outside_the_allowlist_is_a_404_naming_the_allowed_ids(function: Function, context: Any) -> None:
    status, body = answer(function.lambda_handler(query({"prompt": "Hi", "model": "meta.llama3-70b"}), context))
    assert status == 404
    assert body["detail"] == (
        f"model: 'meta.llama3-70b' is not served here (served: amazon.titan-text-premier-v1:0, {NOVA}, {GEMMA})"
    )


def test_a_prompt_to_a_non_titan_model_goes_through_converse_as_one_user_turn(
    function: Function, context: Any, stubbed: Stubber
) -> None:
    expected = {
        "modelId": NOVA,
        "messages": [{"role": "user", "content": [{"text": "Say hi"}]}],
        "inferenceConfig": {"maxTokens": 4},
    }
    stubbed.add_response("converse", converse_answer("Hi there"), expected)
    status, body = answer(function.lambda_handler(query({"prompt": "Say hi", "model": NOVA}), context))
    assert status == 200
    assert (body["text"], body["model"], body["finish_reason"]) == ("Hi there", NOVA, "length")


def test_a_continuation_on_titan_is_its_input_text_as_it_is(function: Function, context: Any, stubbed: Stubber) -> None:
    payload = json.dumps(
        {"inputTextTokenCount": 3, "results": [{"tokenCount": 1, "outputText": " a", "completionReason": "LENGTH"}]}
    ).encode()
    expected = {
        "modelId": "amazon.titan-text-premier-v1:0",
        "body": json.dumps({"inputText": "Once upon", "textGenerationConfig": {"maxTokenCount": 4}}),
        "contentType": "application/json",
        "accept": "application/json",
    }
    body = {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"}
    stubbed.add_response("invoke_model", body, expected)
    event = query({"prompt": "Once upon", "continuation": True, "model": "amazon.titan-text-premier-v1:0"})
    status, body = answer(function.lambda_handler(event, context))
    assert (status, body["model"], body["text"]) == (200, "amazon.titan-text-premier-v1:0", " a")


def test_the_stream_names_the_chosen_model_and_refuses_an_unknown_one(
    function: Function, context: Any, stubbed: Stubber
) -> None:
    class Stream(list[dict[str, Any]]):
        def close(self) -> None:
            pass

    events = Stream(
        [
            {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": {"inputTokens": 2, "outputTokens": 1, "totalTokens": 3}, "metrics": {}}},
        ]
    )
    function.bedrock.converse_stream = lambda **arguments: {"stream": events}  # type: ignore[method-assign]
    try:
        lines = b"".join(function.stream_handler(query({"prompt": "Hi", "model": GEMMA}), context))
        refused = b"".join(function.stream_handler(query({"prompt": "Hi", "model": "nope"}), context))
    finally:
        del function.bedrock.converse_stream
    done = json.loads(lines.split(handler_module.STREAM_SEPARATOR, 1)[1].splitlines()[-1])
    assert (done["type"], done["model"]) == ("done", GEMMA)
    metadata, problem = refused.split(handler_module.STREAM_SEPARATOR, 1)
    assert json.loads(metadata)["statusCode"] == 404
    assert "served: amazon.titan-text-premier-v1:0" in json.loads(problem)["detail"]


@pytest.mark.parametrize(
    ("model_id", "foundation", "owner", "invoke"),
    [
        ("amazon.titan-text-premier-v1:0", "amazon.titan-text-premier-v1:0", "amazon", True),
        ("us.amazon.titan-text-premier-v1:0", "amazon.titan-text-premier-v1:0", "amazon", True),
        (NOVA, "amazon.nova-micro-v1:0", "amazon", False),
        (CLAUDE_PROFILE, "anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic", False),
        ("eu.meta.llama3-2-1b-instruct-v1:0", "meta.llama3-2-1b-instruct-v1:0", "meta", False),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b-instruct-v1:0",
            "meta.llama3-8b-instruct-v1:0",
            "meta",
            False,
        ),
    ],
)
def test_each_id_names_its_foundation_model_owner_and_api(
    model_id: str, foundation: str, owner: str, invoke: bool
) -> None:
    assert (foundation_id(model_id), owned_by(model_id), takes_invoke_model(model_id)) == (foundation, owner, invoke)


def test_the_allowlist_comes_from_the_environment_the_default_first() -> None:
    config = FunctionConfig.from_environ(
        {"BEDROCK_MODEL_IDS": f"{NOVA}, amazon.titan-text-premier-v1:0,{GEMMA}", "BEDROCK_BASE_MODEL_IDS": GEMMA}
    )
    assert config.allowed_model_ids == ("amazon.titan-text-premier-v1:0", NOVA, GEMMA)
    assert config.base_model_ids == (GEMMA,)
    assert FunctionConfig.from_environ({}).allowed_model_ids == ("amazon.titan-text-premier-v1:0",)
    # What the template gives by default: the one model, and no base models.
    templated = {"BEDROCK_MODEL_IDS": "amazon.titan-text-premier-v1:0", "BEDROCK_BASE_MODEL_IDS": ""}
    assert FunctionConfig.from_environ(templated) == FunctionConfig(other_model_ids=("amazon.titan-text-premier-v1:0",))


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"BEDROCK_MODEL_IDS": "a.b,,c.d"}, "BEDROCK_MODEL_IDS"),
        ({"BEDROCK_MODEL_IDS": "a.b c"}, "BEDROCK_MODEL_IDS"),
        ({"BEDROCK_MODEL_ID": "a.b,c.d"}, "BEDROCK_MODEL_ID"),
        ({"BEDROCK_BASE_MODEL_IDS": "x y"}, "BEDROCK_BASE_MODEL_IDS"),
        ({"BEDROCK_MODEL_IDS": "a.b", "BEDROCK_BASE_MODEL_IDS": "c.d"}, "BEDROCK_BASE_MODEL_IDS"),
    ],
)
def test_a_bad_model_id_stops_the_function_naming_its_variable(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: "):
        FunctionConfig.from_environ(environ)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"prompt": "Hi", "model": ""}, "model: a model id of 1 to 2048 letters, digits and ._:/-"),
        ({"prompt": "Hi", "model": "m" * 2049}, "model: a model id of 1 to 2048 letters, digits and ._:/-"),
        ({"prompt": "Hi", "model": 5}, "model: a model id of 1 to 2048 letters, digits and ._:/-"),
        ({"prompt": "Hi", "model": "us.x y"}, "model: a model id of 1 to 2048 letters, digits and ._:/-"),
        ({"prompt": "Hi", "model": "x\n"}, "model: a model id of 1 to 2048 letters, digits and ._:/-"),
        ({"prompt": "Hi", "continuation": "yes"}, "continuation: a boolean"),
        (
            {"messages": [{"role": "user", "content": "Hi"}], "continuation": True},
            "continuation: only with prompt (a conversation is answered)",
        ),
    ],
)
def test_a_bad_model_or_continuation_is_a_400_naming_it(
    function: Function, context: Any, body: dict[str, Any], detail: str
) -> None:
    status, problem = answer(function.lambda_handler(query(body), context))
    assert (status, problem["detail"]) == (400, detail)
