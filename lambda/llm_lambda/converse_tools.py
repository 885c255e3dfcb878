"""Tools and structured output at the Bedrock boundary: a request's tools, tool turns and json_schema as Converse's
toolConfig, toolUse / toolResult blocks and outputConfig; Converse's toolUse blocks and stream events back as
tool calls.

A run of `tool` turns (and the user turn after them, if any) is one Converse user turn of toolResult blocks (then
text), as Converse wants a call's results in the user turn right after it. `tool_choice` none has no Converse
form: the tools are left out, and the conversation's calls and results are written into its turns as text, so
that the model answers from them and cannot call again.
"""

from __future__ import annotations

import json
from typing import Any

from llm_wire.request import QueryRequest, Turn
from llm_wire.tools import NAMED, NONE, REQUIRED, ToolCall, ToolCallPiece


def converse_turns(request: QueryRequest) -> list[dict[str, Any]]:
    """The conversation as Converse messages, tool calls and results as their blocks."""
    messages = request.messages if request.prompt is None else (Turn("user", request.prompt),)
    if request.tool_choice.mode == NONE:
        messages = tuple(_as_text(turn) for turn in messages)
    turns: list[dict[str, Any]] = []
    for turn in messages:
        if turn.role == "assistant":
            blocks: list[dict[str, Any]] = [{"text": turn.content}] if turn.content else []
            blocks += [
                {"toolUse": {"toolUseId": c.id, "name": c.name, "input": json.loads(c.arguments)}}
                for c in turn.tool_calls
            ]
            turns.append({"role": "assistant", "content": blocks})
            continue
        block: dict[str, Any] = {"text": turn.content}
        if turn.role == "tool":
            block = {"toolResult": {"toolUseId": turn.tool_call_id, "content": [{"text": turn.content}]}}
        if turns and turns[-1]["role"] == "user":  # after tool results: the same user turn
            turns[-1]["content"].append(block)
        else:
            turns.append({"role": "user", "content": [block]})
    return turns


def _as_text(turn: Turn) -> Turn:
    """A turn with its calls or its result written as text (tool_choice none): a tool turn becomes a user one."""
    calls = "\n".join(f"(called {call.name} with {call.arguments})" for call in turn.tool_calls)
    if turn.role == "tool":
        return Turn("user", f"(the result of call {turn.tool_call_id}: {turn.content})")
    return Turn(turn.role, "\n".join(text for text in (turn.content, calls) if text)) if calls else turn


def tool_arguments(request: QueryRequest) -> dict[str, Any]:
    """Converse's toolConfig or outputConfig for the request, if it has tools or a json_schema."""
    if request.json_schema is not None:
        schema = {"schema": json.dumps(request.json_schema), "name": "answer"}
        return {"outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}}
    if not request.tools or request.tool_choice.mode == NONE:
        return {}
    specs = [
        {"toolSpec": {"name": t.name, "description": t.description or t.name, "inputSchema": {"json": t.parameters}}}
        for t in request.tools
    ]
    choice: dict[str, Any] = {"auto": {}}
    if request.tool_choice.mode == REQUIRED:
        choice = {"any": {}}
    elif request.tool_choice.mode == NAMED:
        choice = {"tool": {"name": request.tool_choice.name}}
    return {"toolConfig": {"tools": specs, "toolChoice": choice}}


def answer_calls(blocks: list[dict[str, Any]]) -> tuple[ToolCall, ...]:
    """The toolUse blocks of a Converse answer as tool calls (arguments as JSON text)."""
    return tuple(
        ToolCall(block["toolUse"]["toolUseId"], block["toolUse"]["name"], json.dumps(block["toolUse"]["input"]))
        for block in blocks
        if "toolUse" in block
    )


class StreamCalls:
    """Follows a ConverseStream's content blocks: a toolUse block's start and input deltas become pieces of the
    call numbered by order of appearance (Converse's contentBlockIndex counts text blocks too)."""

    def __init__(self) -> None:
        self.indexes: dict[int, int] = {}  # contentBlockIndex -> call index

    def start(self, event: dict[str, Any]) -> ToolCallPiece | None:
        use = event.get("start", {}).get("toolUse")
        if not isinstance(use, dict):
            return None
        index = self.indexes.setdefault(event.get("contentBlockIndex", len(self.indexes)), len(self.indexes))
        return ToolCallPiece(index, id=str(use["toolUseId"]), name=str(use["name"]))

    def delta(self, event: dict[str, Any]) -> ToolCallPiece | None:
        use = event.get("delta", {}).get("toolUse")
        if not isinstance(use, dict) or event.get("contentBlockIndex") not in self.indexes:
            return None
        return ToolCallPiece(self.indexes[event["contentBlockIndex"]], arguments=str(use.get("input", "")))
