"""Converse's tool use and structured output for the local models: what the model is told, the grammar that holds
it to the form, and the reading of its text back into Converse's content blocks, whole or as stream events.

The model sees the tools in its system text and calls one as `<tool_call>{"name": ..., "arguments": {...}}
</tool_call>`; earlier calls and their results are written into the turns the same way (`<tool_response>`). With
toolChoice `any` or `tool` the whole answer is one call, enforced by a grammar; with `auto` the model may answer in
text, and the grammar takes over once it opens a call. Structured output (outputConfig's json_schema) is a grammar
for the schema. A model whose family Bedrock serves without these features refuses them, naming the feature.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdallm.local_cloud.bedrock_errors import BedrockError
from lambdallm.local_cloud.engines import Grammar
from lambdallm.local_cloud.grammar import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    SchemaRefused,
    json_grammar,
    tool_call_grammar,
)

AUTO, ANY = "auto", "any"
# Bedrock's Titan Text models take neither tools nor structured output in Converse; the local twin does the same.
NO_TOOLS = ("amazon.titan-text",)
_CALL_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_CALL_TAIL = re.compile(r"\s*\}\s*</tool_call>$")
_ID_CHARS = string.ascii_letters + string.digits


def validation(message: str) -> BedrockError:
    """A Converse ValidationException."""
    return BedrockError(400, "ValidationException", message)


@dataclass(frozen=True)
class Tool:
    """One toolSpec: the name the model calls, what it is for, and the JSON Schema of its input."""

    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Tools:
    """A request's toolConfig: its tools and toolChoice (`auto`, `any`, or one tool's name)."""

    tools: tuple[Tool, ...]
    choice: str = AUTO

    def system_text(self) -> str:
        """What the model is told about the tools and how to call one."""
        listed = "\n".join(
            json.dumps({"name": tool.name, "description": tool.description, "parameters": tool.schema})
            for tool in self.tools
        )
        must = "You must call one of them." if self.choice == ANY else "Call one only if it helps."
        if self.choice not in (AUTO, ANY):
            must = f"You must call {self.choice}."
        return (
            f"You can call these tools, each given with the JSON Schema of its arguments:\n<tools>\n{listed}\n"
            f"</tools>\n{must} To call a tool, answer with {TOOL_CALL_OPEN}"
            f'{{"name": <the tool\'s name>, "arguments": <its arguments>}}{TOOL_CALL_CLOSE} and nothing else.'
        )

    def grammar(self) -> Grammar:
        """The call grammar: one call of the chosen tool, of any tool, or (auto) text unless a call starts."""
        chosen = [tool for tool in self.tools if self.choice in (AUTO, ANY, tool.name)]
        return tool_call_grammar({tool.name: tool.schema for tool in chosen}, lazy=self.choice == AUTO)


def refuse_unless_served(model_id: str, feature: str) -> None:
    """Bedrock's 400 for a feature the model family does not serve in Converse."""
    if model_id.startswith(NO_TOOLS):
        raise validation(f"This model ({model_id}) doesn't support {feature}.")


def parse_tools(config: Any) -> Tools:
    """A Converse toolConfig, checked as Bedrock checks it."""
    if not isinstance(config, dict) or set(config) - {"tools", "toolChoice"}:
        raise validation("toolConfig must be an object with tools and, optionally, toolChoice.")
    specs = config.get("tools")
    if not isinstance(specs, list) or not specs:
        raise validation("toolConfig.tools must be a non-empty list.")
    tools = tuple(_tool(spec, i) for i, spec in enumerate(specs))
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise validation("toolConfig.tools has two tools of the same name.")
    return Tools(tools, _choice(config.get("toolChoice", {"auto": {}}), names))


def _tool(spec: Any, i: int) -> Tool:
    where = f"toolConfig.tools.{i}"
    inner = spec.get("toolSpec") if isinstance(spec, dict) and set(spec) == {"toolSpec"} else None
    if not isinstance(inner, dict):
        raise validation(f"{where} must be an object with a toolSpec.")
    name, schema = inner.get("name"), inner.get("inputSchema")
    if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        raise validation(f"{where}.toolSpec.name must be 1 to 64 letters, digits, _ or -.")
    if not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
        raise validation(f"{where}.toolSpec.inputSchema must hold a JSON Schema object under json.")
    description = inner.get("description", "")
    if not isinstance(description, str):
        raise validation(f"{where}.toolSpec.description must be a string.")
    try:
        json_grammar(schema["json"])  # refused here, named, rather than when the model starts
    except SchemaRefused as exc:
        raise validation(f"{where}.toolSpec.inputSchema: {exc}.") from exc
    return Tool(name, description, schema["json"])


def _choice(choice: Any, names: list[str]) -> str:
    if isinstance(choice, dict) and len(choice) == 1:
        ((kind, value),) = choice.items()
        if kind in (AUTO, ANY) and value == {}:
            return str(kind)
        if kind == "tool" and isinstance(value, dict) and isinstance(value.get("name"), str):
            if value["name"] not in names:
                raise validation(f"toolConfig.toolChoice names the tool {value['name']}, which is not in tools.")
            return str(value["name"])
    raise validation("toolConfig.toolChoice must be one of {auto: {}}, {any: {}} or {tool: {name}}.")


def parse_output_schema(config: Any) -> dict[str, Any]:
    """The JSON Schema of a Converse outputConfig (textFormat json_schema, the schema given as a JSON string)."""
    text_format = config.get("textFormat") if isinstance(config, dict) else None
    structure = text_format.get("structure") if isinstance(text_format, dict) else None
    inner = structure.get("jsonSchema") if isinstance(structure, dict) else None
    if not isinstance(text_format, dict) or text_format.get("type") != "json_schema" or not isinstance(inner, dict):
        raise validation("outputConfig.textFormat must be {type: json_schema, structure: {jsonSchema: {schema}}}.")
    try:
        schema = json.loads(str(inner.get("schema")))
        json_grammar(schema)
    except (TypeError, ValueError) as exc:  # json's errors and SchemaRefused
        raise validation(f"outputConfig.textFormat.structure.jsonSchema.schema: {exc}.") from exc
    return schema  # type: ignore[no-any-return]


def schema_text(schema: dict[str, Any]) -> str:
    """What the model is told about a structured answer."""
    return f"Answer with JSON only, following this JSON Schema:\n{json.dumps(schema)}"


def call_text(name: str, arguments: Any) -> str:
    """A call as the model writes it (for an assistant turn's toolUse block)."""
    return f"{TOOL_CALL_OPEN}{json.dumps({'name': name, 'arguments': arguments})}{TOOL_CALL_CLOSE}"


def result_text(content: str) -> str:
    """A tool's result as the model reads it (for a user turn's toolResult block)."""
    return f"<tool_response>\n{content}\n</tool_response>"


def new_tool_use_id() -> str:
    """An id like Bedrock's (`tooluse_` and 22 letters and digits)."""
    return "tooluse_" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


@dataclass
class CallReader:
    """Reads a model's text as it comes into events: ("text", piece), ("start", id, name), ("input", fragment),
    ("stop",). Text that may begin a call is held back until it is known; a call's closing brace and tag never
    reach its input. The same reader makes the whole answer's blocks, so streamed pieces always add up to them."""

    pending: str = ""
    in_call: bool = False
    head_done: bool = False
    calls: int = 0
    _events: list[tuple[str, ...]] = field(default_factory=list)

    def feed(self, text: str) -> list[tuple[str, ...]]:
        """The events `text` completes."""
        self.pending += text
        while self._step():
            pass
        events, self._events = self._events, []
        return events

    def finish(self) -> list[tuple[str, ...]]:
        """The events left at the end of the text (a call cut short ends with what it had)."""
        if not self.in_call and self.pending:
            self._events.append(("text", self.pending))
        elif self.in_call and self.head_done and self.pending:
            self._events += [("input", self.pending), ("stop",)]
        elif self.in_call and self.head_done:
            self._events.append(("stop",))
        self.pending = ""
        events, self._events = self._events, []
        return events

    def _step(self) -> bool:
        if not self.in_call:
            start = self.pending.find(TOOL_CALL_OPEN)
            if start < 0:
                keep = next(
                    (k for k in range(len(TOOL_CALL_OPEN) - 1, 0, -1) if self.pending.endswith(TOOL_CALL_OPEN[:k])), 0
                )
                if len(self.pending) > keep:
                    self._events.append(("text", self.pending[: len(self.pending) - keep]))
                    self.pending = self.pending[len(self.pending) - keep :]
                return False
            if self.pending[:start].strip():
                self._events.append(("text", self.pending[:start]))
            self.pending, self.in_call, self.head_done = self.pending[start + len(TOOL_CALL_OPEN) :], True, False
            return True
        if not self.head_done:
            head = _CALL_HEAD.match(self.pending)
            if head is None:
                return False
            self._events.append(("start", new_tool_use_id(), json.loads(f'"{head.group(1)}"')))
            self.pending, self.head_done = self.pending[head.end() :], True
            return True
        if tail := _CALL_TAIL.search(self.pending):
            if self.pending[: tail.start()]:
                self._events.append(("input", self.pending[: tail.start()]))
            self._events.append(("stop",))
            self.pending, self.in_call, self.calls = "", False, self.calls + 1
            return True
        keep = _held_tail(self.pending)
        if len(self.pending) > keep:
            self._events.append(("input", self.pending[: len(self.pending) - keep]))
            self.pending = self.pending[len(self.pending) - keep :]
        return False


def _partial_open(text: str) -> int:
    """How much of `text`'s end may still become a call's opening tag."""
    return next((k for k in range(len(TOOL_CALL_OPEN) - 1, 0, -1) if text.endswith(TOOL_CALL_OPEN[:k])), 0)


def _held_tail(text: str) -> int:
    """How much of `text`'s end may still turn out to be the call's closing `}` and tag."""
    for start in range(len(text)):
        rest = text[start:]
        match = re.fullmatch(r"\s*\}?\s*(<(/(t(o(o(l(_(c(a(l(l(>)?)?)?)?)?)?)?)?)?)?)?)?", rest)
        if match and rest.lstrip().startswith("}"):
            return len(rest)
    return 0


def content_blocks(text: str) -> Iterator[dict[str, Any]]:
    """A whole answer's text as Converse content blocks: its text, and each call as a toolUse block."""
    reader = CallReader()
    call: dict[str, Any] | None = None
    for event in [*reader.feed(text), *reader.finish()]:
        if event[0] == "text":
            yield {"text": event[1]}
        elif event[0] == "start":
            call = {"toolUseId": event[1], "name": event[2], "input": ""}
        elif event[0] == "input" and call is not None:
            call["input"] += event[1]
        elif event[0] == "stop" and call is not None:
            try:
                call["input"] = json.loads(call["input"])
            except ValueError:
                call["input"] = {}  # a call cut short by maxTokens: its stream had the pieces it got to
            yield {"toolUse": call}
            call = None
