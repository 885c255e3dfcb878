"""The REST tier's body limit, derived from the contract: the largest valid request in its costliest encoding.

A character's cost depends on how the client's JSON library writes it: one byte as ASCII, up to four as raw
UTF-8, six as a `\\uXXXX` escape, and twelve for a character outside the Basic Multilingual Plane written as an
escaped surrogate pair (`\\ud83d\\ude00`, what Python's json.dumps writes by default). So the limit is the size
of the largest request the spec allows, every character such a pair, pretty-printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lambdallm.settings import RestSettings, SettingsError
from llm_wire.limits import MAX_TOOLS_CHARS

WIDEST_CHARACTER = "\U0001f600"  # 12 bytes escaped as a surrogate pair
# The longest way json.dumps writes a number within 0..1 (23 characters: 17 digits and an exponent).
LONGEST_FRACTION = 2.2250738585072014e-308


def largest_requests(spec: Path) -> list[dict[str, Any]]:
    """The largest valid GenerateRequest of each shape (a prompt, a conversation, a conversation with tools and
    their calls), at every bound of the spec.

    A conversation's turns, its calls' arguments and `system` share the prompt's `maxLength`, and all the tools'
    descriptions and parameters MAX_TOOLS_CHARS (the schema's descriptions say so, and the proxy checks them), so
    the largest conversation spends it on the most turns and the longest `system`."""
    schemas = yaml.safe_load(spec.read_text())["components"]["schemas"]
    fields = schemas["GenerateRequest"]["properties"]
    total = fields["prompt"]["maxLength"]
    stops = fields["stop_sequences"]
    common = {
        "max_tokens": fields["max_tokens"]["maximum"],
        "temperature": LONGEST_FRACTION,
        "top_p": LONGEST_FRACTION,
        "stop_sequences": [WIDEST_CHARACTER * stops["items"]["maxLength"]] * stops["maxItems"],
        "model": "m" * fields["model"]["maxLength"],  # ASCII only (its pattern)
        "continuation": False,  # only with a prompt; `false` is the longer of the two
    }
    turns = fields["messages"]["maxItems"] // 2 * 2 + 1  # odd: user first and last, roles alternating
    system = min(fields["system"]["maxLength"], total - turns)
    contents = _split(total - system, turns)
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": WIDEST_CHARACTER * n} for i, n in enumerate(contents)
    ]
    return [
        {"prompt": WIDEST_CHARACTER * total} | common,
        {"messages": messages, "system": WIDEST_CHARACTER * system} | common,
        _largest_with_tools(schemas, total, system) | common,
    ]


def _largest_with_tools(schemas: dict[str, Any], total: int, system: int) -> dict[str, Any]:
    """The largest conversation with tools: every tool, its description taking the tools' budget; then, in every
    turn a tool call can take, a call (each answered by a tool turn right after it, as the rules ask), with the
    longest ids. The text budget is shared by the turns, the calls' arguments and `system` (llm_wire.limits)."""
    tool_count = schemas["GenerateRequest"]["properties"]["tools"]["maxItems"]
    calls_per_turn = schemas["Message"]["properties"]["tool_calls"]["maxItems"]
    id_chars = schemas["ToolCall"]["properties"]["id"]["maxLength"]
    turn_count = schemas["GenerateRequest"]["properties"]["messages"]["maxItems"]
    parameters = {"type": "object"}
    names = [f"tool_{i}".ljust(64, "_") for i in range(tool_count)]  # the name pattern's longest
    description_chars = _split(MAX_TOOLS_CHARS - tool_count * len(json.dumps(parameters)), tool_count)
    tools = [
        {"name": name, "description": WIDEST_CHARACTER * chars, "parameters": parameters}
        for name, chars in zip(names, description_chars, strict=True)
    ]
    messages: list[dict[str, Any]] = [{"role": "user"}]
    calls = 0
    while len(messages) + 2 <= turn_count:  # an assistant turn, and a tool turn for each of its calls
        batch = min(calls_per_turn, turn_count - len(messages) - 1)
        ids = [f"{calls + j:04d}".rjust(id_chars, WIDEST_CHARACTER) for j in range(batch)]
        messages.append({"role": "assistant", "tool_calls": [{"id": i, "name": names[0]} for i in ids]})
        messages += [{"role": "tool", "tool_call_id": i} for i in ids]
        calls += batch
    # Each call's arguments an empty object; the rest of the text budget in the turns, the widest way.
    texts = [m for m in messages if m["role"] != "assistant"]
    contents = _split(total - system - 2 * calls, len(texts))
    for message, chars in zip(texts, contents, strict=True):
        message["content"] = WIDEST_CHARACTER * chars
    for message in messages:
        for call in message.get("tool_calls", ()):
            call["arguments"] = "{}"
    return {
        "messages": messages,
        "system": WIDEST_CHARACTER * system,
        "tools": tools,
        "tool_choice": {"name": names[0]},
    }


def largest_request_bytes(spec: Path) -> int:
    """The size of the largest valid request, every character escaped as a surrogate pair and indented: of
    `POST /query`'s, and of the same requests in OpenAI's shape (`/v1` shares the limit)."""
    requests = largest_requests(spec)
    requests += [openai_form(request) for request in requests]
    return max(len(json.dumps(request, indent=2).encode()) for request in requests)


def openai_form(request: dict[str, Any]) -> dict[str, Any]:
    """`request` (a GenerateRequest) as `/v1` takes it: a prompt as a completion's, a conversation as a chat
    completion's, with `system` its first message, and each tool, call and choice in OpenAI's wrapping. Fields
    `/v1` accepts and ignores (`metadata`, `user`, a message's `refusal`...) are not in it: a request padded
    with them may exceed the limit (docs/api.md)."""
    common = {"model": request["model"], "max_tokens": request["max_tokens"], "stop": request["stop_sequences"]}
    common |= {"temperature": request["temperature"], "top_p": request["top_p"]}
    if "prompt" in request:
        return {"prompt": request["prompt"]} | common
    messages = [{"role": "system", "content": request["system"]}]
    for message in request["messages"]:
        calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in message.get("tool_calls", ())
        ]
        messages.append(message | ({"tool_calls": calls} if calls else {}))
    chat = {"messages": messages, "max_completion_tokens": request["max_tokens"]} | common
    if "tools" in request:
        chat["tools"] = [{"type": "function", "function": tool} for tool in request["tools"]]
        chat["tool_choice"] = {"type": "function", "function": request["tool_choice"]}
    return chat


def body_limit(settings: RestSettings, spec: Path) -> int:
    """`max_body_bytes`, or (0, the default) the largest valid request; a SettingsError if it is set below that,
    since it would refuse requests the contract accepts."""
    floor = largest_request_bytes(spec)
    if settings.max_body_bytes == 0:
        return floor
    if settings.max_body_bytes < floor:
        raise SettingsError(
            f"max_body_bytes: must be at least {floor}, the largest valid request JSON-escaped (0 picks it)"
        )
    return settings.max_body_bytes


def _split(characters: int, parts: int) -> list[int]:
    """`characters` in `parts` lengths as even as they can be, each at least 1."""
    share, extra = divmod(characters, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]
