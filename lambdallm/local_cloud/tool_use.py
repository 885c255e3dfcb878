"""Converse's tool use and structured output for the local models: what the model is told and the grammar that
holds it to the form (`call_reader` reads its text back into Converse's content blocks).

The model sees the tools in its system text and calls one as `<tool_call>{"name": ..., "arguments": {...}}
</tool_call>`; earlier calls and their results are written into the turns the same way (`<tool_response>`). With
toolChoice `any` or `tool` the whole answer is one call, enforced by a grammar; with `auto` the model may answer in
text, and the grammar takes over once it opens a call. Structured output (outputConfig's json_schema) is a grammar
for the schema. A model whose family Bedrock serves without these features refuses them, naming the feature.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
