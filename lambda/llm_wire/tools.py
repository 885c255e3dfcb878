"""Tools and structured output in a backend request (specs/backend.yaml): their fields, checked as the proxy and
the Lambda both check them, and the conversation rules that tool turns add.

A conversation with tools: user first; an assistant turn follows a user or tool turn and may call tools
(`tool_calls`, its text then optional); each call is answered by one `tool` turn naming its id, right after it;
a user turn may follow the results; the last turn is the user's or a tool's. Whether a JSON Schema can be
followed is the model's to say (Bedrock answers a 400 naming what it does not support).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llm_wire.errors import BackendError
from llm_wire.limits import MAX_PROMPT_CHARS, MAX_SCHEMA_CHARS, MAX_TOOLS, MAX_TOOLS_CHARS

TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
AUTO, REQUIRED, NONE, NAMED = "auto", "required", "none", "named"


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it is for, and the JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: the id its result answers, the tool, and the arguments as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallPiece:
    """A piece of a streamed call (a `tool_call` event of specs/backend.yaml): the first of an index carries its id
    and name, the next ones fragments of its `arguments`; the Lambda writes them and the proxy reads them."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class ToolChoice:
    """Whether the model must call a tool: `auto`, `required`, `none`, or `named` (the tool `name`)."""

    mode: str = AUTO
    name: str | None = None


AUTO_CHOICE = ToolChoice()


def bad(field: str, rule: str) -> BackendError:
    """The 400 for a field that breaks a rule, in the words every tier uses: `field: rule`."""
    return BackendError(400, f"{field}: {rule}")


def parse_tools(data: dict[str, Any]) -> tuple[tuple[Tool, ...], ToolChoice]:
    """`tools` and `tool_choice`: at most MAX_TOOLS tools with unique names, their descriptions and parameters
    within MAX_TOOLS_CHARS together; a choice of one of them."""
    items = data.get("tools", [])
    if not isinstance(items, list) or len(items) > MAX_TOOLS or ("tools" in data and not items):
        raise bad("tools", f"a list of 1 to {MAX_TOOLS} tools")
    parsed = [_tool(item, i) for i, item in enumerate(items)]
    tools = tuple(tool for tool, _ in parsed)
    if len({tool.name for tool in tools}) != len(tools):
        raise bad("tools", "each tool's name must be unique")
    if sum(len(tool.description) + parameters_chars for tool, parameters_chars in parsed) > MAX_TOOLS_CHARS:
        raise bad("tools", f"all descriptions and parameters (as JSON) together exceed {MAX_TOOLS_CHARS} characters")
    if "tool_choice" not in data:
        return tools, ToolChoice()
    if not tools:
        raise bad("tool_choice", "only with tools")
    choice = data["tool_choice"]
    if choice in (AUTO, REQUIRED, NONE):
        return tools, ToolChoice(choice)
    if isinstance(choice, dict) and set(choice) == {"name"} and isinstance(choice["name"], str):
        if choice["name"] not in {tool.name for tool in tools}:
            raise bad("tool_choice.name", f"{choice['name'][:64]!r} is not one of the tools")
        return tools, ToolChoice(NAMED, choice["name"])
    raise bad("tool_choice", 'one of "auto", "required", "none", or {"name": <a tool\'s name>}')


def _tool(item: Any, i: int) -> tuple[Tool, int]:
    """The i-th tool, and the length of its parameters as JSON (measured once, for both bounds)."""
    if not isinstance(item, dict) or not {"name", "parameters"} <= set(item) <= {"name", "description", "parameters"}:
        raise bad(f"tools[{i}]", "an object with name, parameters and optionally description")
    name, description, parameters = item["name"], item.get("description", ""), item["parameters"]
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise bad(f"tools[{i}].name", "1 to 64 letters, digits, _ or -")
    if not isinstance(description, str) or len(description) > MAX_SCHEMA_CHARS:
        raise bad(f"tools[{i}].description", f"a string of at most {MAX_SCHEMA_CHARS} characters")
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise bad(f"tools[{i}].parameters", 'a JSON Schema of an object (with "type": "object")')
    if (parameters_chars := len(json.dumps(parameters))) > MAX_SCHEMA_CHARS:
        raise bad(f"tools[{i}].parameters", f"at most {MAX_SCHEMA_CHARS} characters as JSON")
    return Tool(name, description, parameters), parameters_chars


def parse_json_schema(data: dict[str, Any]) -> dict[str, Any] | None:
    """`json_schema`: the JSON Schema the answer must follow (an object), or None for free text."""
    if "json_schema" not in data:
        return None
    schema = data["json_schema"]
    if not isinstance(schema, dict) or len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise bad("json_schema", f"a JSON Schema (an object) of at most {MAX_SCHEMA_CHARS} characters as JSON")
    if "tools" in data:
        raise bad("json_schema", "not with tools (a structured answer or a tool call, not both)")
    return schema


def parse_tool_calls(item: dict[str, Any], i: int) -> tuple[ToolCall, ...]:
    """An assistant turn's `tool_calls`: each with an id, the name of a tool and its arguments as JSON text."""
    calls = item.get("tool_calls", [])
    if not isinstance(calls, list) or not calls or len(calls) > MAX_TOOLS:
        raise bad(f"messages[{i}].tool_calls", f"a list of 1 to {MAX_TOOLS} calls")
    parsed = []
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, dict) or set(call) != {"id", "name", "arguments"}:
            raise bad(where, "an object with exactly id, name and arguments")
        if not isinstance(call["id"], str) or not 1 <= len(call["id"]) <= 64:
            raise bad(f"{where}.id", "a string of 1 to 64 characters")
        if not isinstance(call["name"], str) or not TOOL_NAME.fullmatch(call["name"]):
            raise bad(f"{where}.name", "1 to 64 letters, digits, _ or -")
        if not isinstance(call["arguments"], str) or len(call["arguments"]) > MAX_PROMPT_CHARS:
            raise bad(f"{where}.arguments", f"a JSON object as text, at most {MAX_PROMPT_CHARS} characters")
        try:
            if not isinstance(json.loads(call["arguments"]), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise bad(f"{where}.arguments", "a JSON object as text") from exc
        parsed.append(ToolCall(call["id"], call["name"], call["arguments"]))
    if len({call.id for call in parsed}) != len(parsed):
        raise bad(f"messages[{i}].tool_calls", "each call's id must be unique")
    return tuple(parsed)


class Answers:
    """Which calls of the last assistant turn still wait for their tool turn (each is answered once, in order
    of arrival, before anything else is said)."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()

    def called(self, calls: tuple[ToolCall, ...]) -> None:
        self.waiting = {call.id for call in calls}

    def answer(self, call_id: Any, i: int) -> None:
        if not isinstance(call_id, str) or call_id not in self.waiting:
            raise bad(f"messages[{i}].tool_call_id", "must be the id of a call of the assistant turn before it")
        self.waiting.discard(call_id)

    def check_done(self, i: int) -> None:
        if self.waiting:
            raise bad(f"messages[{i}]", f"the calls {sorted(self.waiting)} have no tool turn with their result")
