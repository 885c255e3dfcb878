"""Tools and structured output in the Lambda: the request's tools and tool turns as Converse's toolConfig and
blocks, Converse's toolUse answers and stream events back as tool calls, and the validator's conversation rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from llm_lambda import bedrock
from llm_lambda.handler import Function
from llm_wire.errors import BackendError
from llm_wire.limits import MAX_PROMPT_CHARS, MAX_TOOLS, MAX_TOOLS_CHARS
from llm_wire.request import parse_body
from llm_wire.tools import ToolCallPiece

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [{"name": "weather", "description": "The weather in a city.", "parameters": WEATHER}]
CALL = {"id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'}
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "call_2", "arguments": '{"city": "Rome"}'}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4 C, clear"},
    {"role": "tool", "tool_call_id": "call_2", "content": "18 C, rain"},
    {"role": "user", "content": "Which is warmer?"},
]


def body(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "Weather in Oslo?"}], "max_tokens": 50, "tools": TOOLS} | fields


def test_tool_turns_become_tool_use_and_one_user_turn_of_results() -> None:
    arguments = bedrock.converse_request("meta.llama3-8b-instruct-v1:0", parse_body(body(messages=ROUND_TRIP)))
    assert arguments["messages"][1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Oslo"}}},
            {"toolUse": {"toolUseId": "call_2", "name": "weather", "input": {"city": "Rome"}}},
        ],
    }
    assert arguments["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": "4 C, clear"}]}},
            {"toolResult": {"toolUseId": "call_2", "content": [{"text": "18 C, rain"}]}},
            {"text": "Which is warmer?"},
        ],
    }
    spec = {"name": "weather", "description": "The weather in a city.", "inputSchema": {"json": WEATHER}}
    assert arguments["toolConfig"] == {"tools": [{"toolSpec": spec}], "toolChoice": {"auto": {}}}


@pytest.mark.parametrize(
    ("choice", "converse"),
    [("required", {"any": {}}), ({"name": "weather"}, {"tool": {"name": "weather"}}), ("auto", {"auto": {}})],
)
def test_tool_choice_maps_to_converse(choice: Any, converse: dict[str, Any]) -> None:
    arguments = bedrock.converse_request("amazon.nova-lite-v1:0", parse_body(body(tool_choice=choice)))
    assert arguments["toolConfig"]["toolChoice"] == converse


def test_tool_choice_none_leaves_the_tools_out_and_writes_calls_and_results_as_text() -> None:
    assert "toolConfig" not in bedrock.converse_request("amazon.nova-lite-v1:0", parse_body(body(tool_choice="none")))
    with_calls = bedrock.converse_request(
        "amazon.nova-lite-v1:0", parse_body(body(messages=ROUND_TRIP, tool_choice="none"))
    )
    assert "toolConfig" not in with_calls
    assert with_calls["messages"][1] == {
        "role": "assistant",
        "content": [{"text": '(called weather with {"city": "Oslo"})\n(called weather with {"city": "Rome"})'}],
    }
    assert with_calls["messages"][2]["content"][0] == {"text": "(the result of call call_1: 4 C, clear)"}


def test_a_json_schema_is_converse_output_config_even_for_a_prompt_to_titan(function: Function) -> None:
    request = parse_body({"prompt": "A city, please.", "max_tokens": 30, "json_schema": WEATHER})
    with Stubber(function.bedrock) as stubbed:
        answer = {
            "output": {"message": {"role": "assistant", "content": [{"text": '{"city": "Oslo"}'}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 9, "outputTokens": 6, "totalTokens": 15},
            "metrics": {"latencyMs": 10},
        }
        expected = {"modelId": ANY, "messages": ANY, "inferenceConfig": ANY, "outputConfig": ANY}
        stubbed.add_response("converse", answer, expected)
        generation = bedrock.generate(function.bedrock, "amazon.titan-text-premier-v1:0", request)
    assert json.loads(generation.text) == {"city": "Oslo"}
    config = bedrock.converse_request("amazon.titan-text-premier-v1:0", request)["outputConfig"]
    assert json.loads(config["textFormat"]["structure"]["jsonSchema"]["schema"]) == WEATHER


def test_a_tool_use_answer_is_tool_calls_with_their_arguments_as_json_text() -> None:
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
    }
    generation = bedrock.parse_converse(answer)
    assert (generation.text, generation.finish_reason) == ("Checking.", "tool_calls")
    (call,) = generation.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("t1", "weather", {"city": "Oslo"})


def test_stream_events_of_a_call_become_its_pieces_numbered_in_order() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Let me check."}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t1", "name": "weather"}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": '}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Oslo"}'}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}}},
    ]
    pieces = list(bedrock._converse_pieces(events))
    assert pieces[:4] == [
        "Let me check.",
        ToolCallPiece(0, id="t1", name="weather"),
        ToolCallPiece(0, arguments='{"city": '),
        ToolCallPiece(0, arguments='"Oslo"}'),
    ]
    assert pieces[4].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]},
            "tool only right after",
        ),
        # The turn named is the last one, where the conversation ends with a call unanswered.
        ({"messages": ROUND_TRIP[:3]}, "messages[2]: the calls ['call_2'] have no tool turn with their result"),
        (
            {"messages": [*ROUND_TRIP[:2], {**ROUND_TRIP[2], "tool_call_id": "nope"}]},
            "messages[2].tool_call_id: must be the id of a call of the assistant turn before it",
        ),
        (
            {"messages": [*ROUND_TRIP[:2], {"role": "user", "content": "x"}]},
            "messages[2]: the calls ['call_1', 'call_2'] have no tool turn with their result",
        ),
        ({"tools": [{**TOOLS[0], "parameters": {"type": "string"}}]}, "tools[0].parameters"),
        ({"tools": TOOLS * 2}, "unique"),
        ({"tool_choice": {"name": "nope"}}, "tool_choice.name"),
        ({"json_schema": WEATHER}, "json_schema: not with tools"),
        (
            {"messages": [ROUND_TRIP[0], {**ROUND_TRIP[1], "tool_calls": [{**CALL, "arguments": "[1]"}]}]},
            "messages[1].tool_calls[0].arguments: a JSON object as text",
        ),
        ({"messages": [*ROUND_TRIP[:2], ROUND_TRIP[1]]}, "messages[2].role"),
    ],
)
def test_a_bad_tool_request_is_a_400_naming_the_field(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(BackendError) as caught:
        parse_body(body(**fields))
    assert caught.value.status == 400
    assert says in caught.value.detail


@pytest.mark.parametrize(
    ("request_body", "detail"),
    [
        (
            {"prompt": "Hi", "max_tokens": 5, "tools": TOOLS},
            "tools: only with messages (a prompt is continued, not answered)",
        ),
        ({"messages": ROUND_TRIP, "max_tokens": 5}, "tools: required when the conversation holds tool calls"),
    ],
)
def test_tools_need_a_conversation_and_tool_turns_need_tools(request_body: dict[str, Any], detail: str) -> None:
    with pytest.raises(BackendError) as caught:
        parse_body(request_body)
    assert (caught.value.status, caught.value.detail) == (400, detail)


def _tools_of(total_chars: int) -> list[dict[str, Any]]:
    """MAX_TOOLS tools whose descriptions and parameters (as JSON text) come to `total_chars` together."""
    parameters = {"type": "object"}
    share, extra = divmod(total_chars - MAX_TOOLS * len(json.dumps(parameters)), MAX_TOOLS)
    return [
        {"name": f"tool_{i}", "description": "d" * (share + (i < extra)), "parameters": parameters}
        for i in range(MAX_TOOLS)
    ]


def test_all_tools_together_may_take_their_whole_budget_and_not_a_character_more() -> None:
    assert len(parse_body(body(tools=_tools_of(MAX_TOOLS_CHARS))).tools) == MAX_TOOLS

    with pytest.raises(BackendError) as caught:
        parse_body(body(tools=_tools_of(MAX_TOOLS_CHARS + 1)))
    assert (caught.value.status, caught.value.detail) == (
        400,
        f"tools: all descriptions and parameters (as JSON) together exceed {MAX_TOOLS_CHARS} characters",
    )


def test_the_calls_arguments_count_in_the_conversations_text() -> None:
    arguments = '{"city": "Oslo"}'
    turns = [
        {"role": "user", "content": "x" * (MAX_PROMPT_CHARS - len(arguments) - len("result"))},
        {"role": "assistant", "tool_calls": [{**CALL, "arguments": arguments}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "result"},
    ]
    assert parse_body(body(messages=turns)).chars == MAX_PROMPT_CHARS

    turns[1]["tool_calls"] = [{**CALL, "arguments": '{"city": "Oslo!"}'}]
    with pytest.raises(BackendError) as caught:
        parse_body(body(messages=turns))
    assert caught.value.detail == f"messages: all turns and system together exceed {MAX_PROMPT_CHARS} characters"
