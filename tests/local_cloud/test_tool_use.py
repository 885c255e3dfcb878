"""Tool use and structured output on the local Bedrock, through boto3's converse() and converse_stream().

On the real model (Gemma 3 270M, whose id serves both features): forced calls and structured answers over
schemas of every kind, each validated with jsonschema; a streamed call whose pieces add up to a valid input; a
round trip with a tool result. On the echo engine: Bedrock's 400s, each naming its cause.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from lambdallm.local_cloud.server import LocalCloud
from tests.local_cloud.conftest import GEMMA_ID, MODEL_ID, bedrock_client
from tests.local_cloud.test_converse import error_of, user

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]},
    {
        "type": "object",
        "properties": {
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["unit", "days"],
    },
    {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 1, "maxItems": 3},
            "urgent": {"type": "boolean"},
        },
        "required": ["items", "urgent"],
    },
    {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120},
                },
                "required": ["name", "age"],
            },
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["person", "score"],
    },
    {
        "type": "object",
        "properties": {"temperature": {"type": "number", "minimum": -50, "maximum": 60}},
        "required": ["temperature"],
    },
]
CONFIG = {"maxTokens": 120, "temperature": 0.7}


def tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"toolSpec": {"name": name, "description": f"Does {name}.", "inputSchema": {"json": schema}}}


@pytest.mark.model
@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_forced_tool_call_has_an_input_that_follows_the_schema(
    model_cloud: LocalCloud, schema: dict[str, Any]
) -> None:
    tools = {"tools": [tool("lookup", schema), tool("other", SCHEMAS[0])], "toolChoice": {"tool": {"name": "lookup"}}}
    answer = bedrock_client(model_cloud).converse(
        modelId=GEMMA_ID, messages=[user("Look it up, please.")], toolConfig=tools, inferenceConfig=CONFIG
    )
    assert answer["stopReason"] == "tool_use"
    (block,) = answer["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "lookup"
    jsonschema.validate(block["toolUse"]["input"], schema)


@pytest.mark.model
def test_any_calls_one_of_the_tools(model_cloud: LocalCloud) -> None:
    tools = {"tools": [tool("weather", SCHEMAS[1]), tool("shop", SCHEMAS[2])], "toolChoice": {"any": {}}}
    answer = bedrock_client(model_cloud).converse(
        modelId=GEMMA_ID, messages=[user("Will it rain?")], toolConfig=tools, inferenceConfig=CONFIG
    )
    call = answer["output"]["message"]["content"][-1]["toolUse"]
    jsonschema.validate(call["input"], SCHEMAS[1] if call["name"] == "weather" else SCHEMAS[2])


@pytest.mark.model
@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_structured_answer_is_json_that_follows_the_schema(model_cloud: LocalCloud, schema: dict[str, Any]) -> None:
    output = {
        "textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": json.dumps(schema), "name": "s"}}}
    }
    answer = bedrock_client(model_cloud).converse(
        modelId=GEMMA_ID, messages=[user("Describe it.")], outputConfig=output, inferenceConfig=CONFIG
    )
    assert answer["stopReason"] == "end_turn"
    jsonschema.validate(json.loads(answer["output"]["message"]["content"][0]["text"]), schema)


@pytest.mark.model
def test_a_streamed_call_arrives_as_start_deltas_and_stop_that_add_up_to_a_valid_input(model_cloud: LocalCloud) -> None:
    tools = {"tools": [tool("plan", SCHEMAS[3])], "toolChoice": {"any": {}}}
    stream = bedrock_client(model_cloud).converse_stream(
        modelId=GEMMA_ID, messages=[user("Plan it.")], toolConfig=tools, inferenceConfig=CONFIG
    )["stream"]
    events = list(stream)
    kinds = [next(iter(event)) for event in events]
    assert kinds[:2] == ["messageStart", "contentBlockStart"] and kinds[-3:] == [
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    start = events[1]["contentBlockStart"]["start"]["toolUse"]
    assert start["name"] == "plan" and start["toolUseId"].startswith("tooluse_")
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert len(pieces) > 1, "the input arrives in pieces as the model writes it"
    jsonschema.validate(json.loads("".join(pieces)), SCHEMAS[3])
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


@pytest.mark.model
def test_a_tool_result_goes_back_to_the_model_for_its_answer(model_cloud: LocalCloud) -> None:
    client = bedrock_client(model_cloud)
    tools = {"tools": [tool("weather", SCHEMAS[0])], "toolChoice": {"any": {}}}
    first = client.converse(
        modelId=GEMMA_ID, messages=[user("Weather in Oslo?")], toolConfig=tools, inferenceConfig=CONFIG
    )
    call = first["output"]["message"]["content"][-1]["toolUse"]
    result = {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"json": {"sky": "clear", "celsius": 4}}]}}
    messages = [user("Weather in Oslo?"), first["output"]["message"], {"role": "user", "content": [result]}]
    final = client.converse(
        modelId=GEMMA_ID, messages=messages, toolConfig={**tools, "toolChoice": {"auto": {}}}, inferenceConfig=CONFIG
    )
    assert final["stopReason"] in ("end_turn", "tool_use", "max_tokens")
    assert final["output"]["message"]["content"]


WEATHER = {"tools": [tool("weather", SCHEMAS[0])]}


@pytest.mark.parametrize(
    ("model_id", "request_fields", "says"),
    [
        (MODEL_ID, {"toolConfig": WEATHER}, "doesn't support tool use"),
        (
            MODEL_ID,
            {"outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{}"}}}}},
            "doesn't support structured output",
        ),
        (GEMMA_ID, {"toolConfig": WEATHER}, "the local echo engine"),
    ],
)
def test_a_model_without_the_feature_refuses_it_by_name(
    instant_cloud: LocalCloud, model_id: str, request_fields: dict[str, Any], says: str
) -> None:
    client = bedrock_client(instant_cloud)
    status, code, message = error_of(lambda: client.converse(modelId=model_id, messages=[user("Hi")], **request_fields))
    assert (status, code) == (400, "ValidationException")
    assert says in message


@pytest.mark.model
@pytest.mark.parametrize(
    ("request_fields", "says"),
    [
        ({"toolConfig": {**WEATHER, "toolChoice": {"tool": {"name": "nope"}}}}, "names the tool nope"),
        ({"toolConfig": {"tools": [tool("bad", {"type": "strin"})]}}, "not a valid JSON Schema"),
        (
            {"outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{"}}}}},
            "jsonSchema.schema",
        ),
        (
            {
                "toolConfig": WEATHER,
                "messages": [
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "x", "content": [{"text": "1"}]}}]}
                ],
            },
            "answers no toolUse",
        ),
    ],
)
def test_a_bad_tool_request_is_a_validation_exception_naming_its_cause(
    model_cloud: LocalCloud, request_fields: dict[str, Any], says: str
) -> None:
    client = bedrock_client(model_cloud)
    fields = {"messages": [user("Hi")], **request_fields}
    status, code, message = error_of(lambda: client.converse(modelId=GEMMA_ID, **fields))
    assert (status, code) == (400, "ValidationException")
    assert says in message
