"""Tools and structured output through the whole chain on the real model (Gemma 3 270M's id, which serves both):
REST /query -> gRPC -> API Gateway -> Lambda (Converse toolConfig / outputConfig) -> local Bedrock (grammars).

Every forced call's arguments and every structured answer are parsed and validated with jsonschema, over schemas
of every kind (nested objects, enums, arrays, required fields, bounded numbers); a streamed call's pieces add up
to the done event's call; a round trip sends the result back; each refusal is a 400 naming its cause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from lambdallm.stack import Stack
from tests.sse import parse_events

pytestmark = [pytest.mark.e2e, pytest.mark.model]
GEMMA = "google.gemma-3-270m"


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


STRING = {"type": "string", "maxLength": 24}
SCHEMAS = [
    obj(city=STRING),
    obj(unit={"enum": ["celsius", "fahrenheit"]}, days={"type": "integer", "minimum": 1, "maximum": 7}),
    obj(items={"type": "array", "items": STRING, "minItems": 1, "maxItems": 3}, urgent={"type": "boolean"}),
    obj(
        person=obj(name=STRING, age={"type": "integer", "minimum": 0, "maximum": 120}),
        score={"type": "number", "minimum": 0, "maximum": 1},
    ),
    obj(temperature={"type": "number", "minimum": -50, "maximum": 60}),
    obj(["title"], title=STRING, tags={"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 2}),
    obj(
        point=obj(
            x={"type": "integer", "minimum": -10, "maximum": 10}, y={"type": "integer", "minimum": -10, "maximum": 10}
        )
    ),
    obj(answer={"enum": ["yes", "no", "maybe"]}, confidence={"type": "integer", "minimum": 0, "maximum": 100}),
    obj(
        order=obj(
            id={"type": "integer", "minimum": 1000, "maximum": 9999},
            lines={
                "type": "array",
                "items": obj(sku=STRING, qty={"type": "integer", "minimum": 1, "maximum": 9}),
                "maxItems": 2,
            },
        )
    ),
    obj(["name"], name=STRING, nickname=STRING, active={"type": "boolean"}),
]
PROMPTS = ["Fill it in for Oslo, please.", "Make something up about a small cat."]
CASES = [(schema, prompt) for schema in SCHEMAS for prompt in PROMPTS]  # 20 of each kind


def post(chain: Stack, body: dict[str, Any], stream: bool = False) -> httpx.Response:
    headers = chain.auth_headers | ({"Accept": "text/event-stream"} if stream else {})
    return httpx.post(f"{chain.rest_url}/query", json=body, headers=headers, timeout=120)


def ask(prompt: str, **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": 150, "model": GEMMA} | fields


def tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": f"Records the {name}.", "parameters": schema}


@pytest.mark.parametrize(("schema", "prompt"), CASES)
def test_a_forced_call_has_arguments_that_follow_the_schema(
    model_chain: Stack, schema: dict[str, Any], prompt: str
) -> None:
    body = ask(prompt, tools=[tool("record", schema), tool("other", SCHEMAS[0])], tool_choice={"name": "record"})
    answer = post(model_chain, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["finish_reason"] == "tool_calls"
    (call,) = answer.json()["tool_calls"]
    assert call["name"] == "record" and call["id"]
    jsonschema.validate(json.loads(call["arguments"]), schema)


@pytest.mark.parametrize(("schema", "prompt"), CASES)
def test_a_structured_answer_follows_the_schema(model_chain: Stack, schema: dict[str, Any], prompt: str) -> None:
    answer = post(model_chain, ask(prompt, json_schema=schema))
    assert answer.status_code == 200, answer.text
    assert answer.json()["finish_reason"] == "stop"
    jsonschema.validate(json.loads(answer.json()["text"]), schema)


def test_streamed_call_pieces_add_up_to_the_done_events_call(model_chain: Stack) -> None:
    body = ask("Plan a trip.", tools=[tool("plan", SCHEMAS[3])], tool_choice="required")
    answer = post(model_chain, body, stream=True)
    assert answer.status_code == 200, answer.text
    events = parse_events(answer.text)
    pieces = [data for event, data in events if event == "tool_call"]
    assert pieces[0]["index"] == 0 and pieces[0]["name"] == "plan" and pieces[0]["id"]
    assert len(pieces) > 2, "the arguments arrive in pieces as the model writes them"
    (done,) = [data for event, data in events if event == "done"]
    arguments = "".join(piece.get("arguments", "") for piece in pieces)
    assert done["tool_calls"] == [{"id": pieces[0]["id"], "name": "plan", "arguments": arguments}]
    assert done["finish_reason"] == "tool_calls"
    jsonschema.validate(json.loads(arguments), SCHEMAS[3])


def test_a_tool_result_goes_back_to_the_model(model_chain: Stack) -> None:
    tools = [tool("weather", SCHEMAS[0])]
    first = post(model_chain, ask("Weather in Oslo?", tools=tools, tool_choice="required")).json()
    call = first["tool_calls"][0]
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"sky": "clear", "celsius": 4}'},
    ]
    final = post(model_chain, {"messages": messages, "max_tokens": 30, "model": GEMMA, "tools": tools})
    assert final.status_code == 200, final.text
    assert final.json()["text"] or final.json().get("tool_calls")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"model": "amazon.titan-text-premier-v1:0"}, "doesn't support tool use"),
        (
            {"tools": [tool("bad", {"type": "object", "properties": {"a": {"type": "strin"}}})]},
            "not a valid JSON Schema",
        ),
        ({"tool_choice": {"name": "nope"}}, "tool_choice.name"),
        (
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]},
            "tool only right after",
        ),
    ],
)
def test_a_bad_tool_request_is_a_400_naming_its_cause(model_chain: Stack, fields: dict[str, Any], says: str) -> None:
    answer = post(model_chain, ask("Weather?", tools=[tool("weather", SCHEMAS[0])]) | fields)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]


def test_bedrest_json_schema_prints_the_validated_object(model_chain: Stack, tmp_path: Path) -> None:
    schema = SCHEMAS[1]
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    bedrest = Path(sys.executable).with_name("bedrest")
    env = os.environ | {"BEDREST_API_KEY": str(model_chain.api_key)}
    command = [str(bedrest), "--port", str(model_chain.ports.rest), "--model", GEMMA, "--max-tokens", "80"]
    done = subprocess.run(
        [*command, "--json-schema", str(tmp_path / "schema.json")],
        input="A forecast for Oslo, please.\nquit\n",
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    jsonschema.validate(json.loads(done.stdout), schema)
    refused = subprocess.run(
        [*command, "--json-schema", str(tmp_path / "missing.json")], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "missing.json" in refused.stderr
