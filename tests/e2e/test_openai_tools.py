"""Tools and structured output with the official openai package through /v1 on the real model (the Gemma id, which
serves both): a tool round trip whole and streamed (call, result, final answer), streamed tool-call deltas that add
up to the whole answer's calls, `response_format` json_schema through `chat.completions.parse` with a pydantic
model, and the refusals as openai's own exception classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pydantic
import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.model]
GEMMA, TITAN = "google.gemma-3-270m", "amazon.titan-text-premier-v1:0"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "description": "The weather now.", "parameters": WEATHER}}
]
QUESTION: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
GET_WEATHER: Any = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module")
def client(model_chain: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{model_chain.rest_url}/v1", api_key=model_chain.api_key, max_retries=0) as client:
        yield client


def test_a_tool_round_trip_whole(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=GEMMA, messages=QUESTION, tools=TOOLS, tool_choice="required", max_tokens=80
    )
    assert first.choices[0].finish_reason == "tool_calls"
    message = first.choices[0].message
    (call,) = message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    result = {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 4, "sky": "clear"})}
    final = client.chat.completions.create(
        model=GEMMA, messages=[*QUESTION, message, result], tools=TOOLS, tool_choice="none", max_tokens=20
    )
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.choices[0].message.content


def test_a_tool_round_trip_streamed_whose_deltas_add_up_to_the_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=GEMMA, messages=QUESTION, tools=TOOLS, tool_choice=GET_WEATHER,
        max_tokens=80, stream=True, temperature=0,
    )  # fmt: skip
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["name"] = (delta.function and delta.function.name) or call["name"]
                call["arguments"] += (delta.function and delta.function.arguments) or ""
    assert finish == "tool_calls"
    assert list(calls) == [0] and calls[0]["name"] == "get_weather" and calls[0]["id"]
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER)
    whole = client.chat.completions.create(
        model=GEMMA, messages=QUESTION, tools=TOOLS, tool_choice=GET_WEATHER,
        max_tokens=80, temperature=0,
    )  # fmt: skip
    (whole_call,) = whole.choices[0].message.tool_calls or []
    assert json.loads(whole_call.function.arguments) == json.loads(calls[0]["arguments"])  # greedy: the same call
    result = {"role": "tool", "tool_call_id": calls[0]["id"], "content": "4 C, clear"}
    function = {"name": "get_weather", "arguments": calls[0]["arguments"]}
    call_message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[0]["id"], "type": "function", "function": function}
    ]}  # fmt: skip
    final = client.chat.completions.create(
        model=GEMMA, messages=[*QUESTION, call_message, result], tools=TOOLS, max_tokens=20, stream=True
    )
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in final)


class Forecast(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=30)
    days: int = pydantic.Field(ge=1, le=7)
    rain: bool


def test_structured_output_through_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    answer = client.chat.completions.parse(
        model=GEMMA, messages=[{"role": "user", "content": "A forecast for Oslo."}], response_format=Forecast,
        max_tokens=60,
    )  # fmt: skip
    parsed = answer.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and 1 <= parsed.days <= 7


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"model": TITAN}, "doesn't support tool use"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"messages": [*QUESTION, {"role": "tool", "tool_call_id": "nope", "content": "1"}]}, "messages[1]"),
    ],
)
def test_a_bad_tool_request_is_a_bad_request_error_naming_its_cause(
    client: openai.OpenAI, fields: dict[str, Any], says: str
) -> None:
    request: dict[str, Any] = {"model": GEMMA, "messages": QUESTION, "tools": TOOLS, "max_tokens": 20} | fields
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    assert says in caught.value.message
