"""Schemathesis hooks for the rules of a conversation that OpenAPI 3.0 cannot state (the specs say them in words):
exactly one of `prompt` and `messages`, `system` only beside `messages`, `continuation` only beside `prompt`, turns
alternating from `user` to `user` (in /v1, the user and assistant messages among the system and developer ones),
the text within its bounds, a `model` the chain serves, and the tool rules (a call answered by the tool turn
after it, a tool_choice naming one of the tools). Bodies with tools or structured output are skipped: the fuzzed
chain runs the echo engine, which follows no grammar and refuses them, as a model without the feature does
(tests/e2e/test_tools.py has them on the real model).

Generated bodies that break them are dropped or put in order, so that `positive_data_acceptance` judges the
rules the schema does state; the cross-field rules have tests of their own (tests/rest, tests/e2e/test_chain.py).
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

from llm_wire.limits import MAX_MESSAGES, MAX_PROMPT_CHARS, MAX_SYSTEM_CHARS

ROLES = ("user", "assistant")
SYSTEM_ROLES = ("system", "developer")  # /v1's messages that become the system text
MAX_TURNS = MAX_MESSAGES
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")  # specs/openai.yaml's ModelId pattern
MAX_MODEL_CHARS = 2048  # specs/openai.yaml's bound on a model id (ModelId)
DEFAULT_MODEL = "amazon.titan-text-premier-v1:0"  # the chain's default model, which every engine serves


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Put well-formed turns in conversation order: user, assistant, ..., user; name a model the chain serves."""
    if isinstance(body, dict) and _bounded_id(body.get("model")):
        body["model"] = DEFAULT_MODEL
    turns = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and t.get("role") in ROLES + SYSTEM_ROLES for t in turns
    ):
        return body  # not a list of well-formed turns: whatever is wrong stays wrong
    spoken = [index for index, turn in enumerate(turns) if turn["role"] in ROLES]
    for number, index in enumerate(spoken):
        turns[index]["role"] = ROLES[number % 2]
    if len(spoken) % 2 == 0 and 2 <= len(spoken) <= MAX_TURNS:
        del turns[spoken[-1]]
    return body


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: Any) -> Any:
    """GET /v1/models/{model}: a model the chain serves (an unknown one's 404 has tests of its own)."""
    if isinstance(path_parameters, dict) and _bounded_id(path_parameters.get("model")):
        path_parameters["model"] = DEFAULT_MODEL
    return path_parameters


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    """Keep a body unless it breaks exactly-one-of (prompt, messages), sends `system` without `messages`, asks for
    `continuation` of a conversation, or (in /v1) has no user message, more text than a conversation holds, or a
    text that Python's `\\S` (the spec's pattern, as Connexion reads it) finds blank and Schemathesis's regex does
    not (`\\x1d`)."""
    if not isinstance(body, dict):
        return True
    if _tools(body):
        return False
    if ("prompt" in body) == ("messages" in body) or ("system" in body and "messages" not in body):
        return False
    if body.get("continuation") is True and "messages" in body:
        return False
    turns = body.get("messages")
    if isinstance(turns, list) and all(isinstance(t, dict) and t.get("role") in ROLES + SYSTEM_ROLES for t in turns):
        if getattr(getattr(ctx, "operation", None), "path", "") == "/chat/completions" and any(
            _blank(t) for t in turns
        ):
            return False
        spoken = [_text(t) for t in turns if t["role"] in ROLES]
        system = "\n\n".join(_text(t) for t in turns if t["role"] in SYSTEM_ROLES)
        if not spoken or len(spoken) > MAX_TURNS or not all(spoken) or len(system) > MAX_SYSTEM_CHARS:
            return False
        return sum(map(len, spoken)) + len(system) <= MAX_PROMPT_CHARS
    return True


def _bounded_id(model: Any) -> bool:
    """A model id within the spec's bounds (any other stays as drawn: a negative case)."""
    return isinstance(model, str) and 1 <= len(model) <= MAX_MODEL_CHARS and MODEL_ID.fullmatch(model) is not None


def _text(turn: dict[str, Any]) -> str:
    content = turn.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else "x"


def _blank(turn: dict[str, Any]) -> bool:
    content = turn.get("content")
    parts = content if isinstance(content, list) else [{"text": content}]
    return any(
        isinstance(part, dict) and isinstance(part.get("text"), str) and not part["text"].strip() for part in parts
    )


def _tools(body: dict[str, Any]) -> bool:
    """Whether a body asks for tools or structured output, or holds tool turns, blank turns or turns without text
    (skipped, valid or not: a hook that dropped them would make a schema-violating case a valid one)."""
    if {"tools", "tool_choice", "json_schema"} & set(body):
        return True
    turns = body.get("messages")
    tool_keys = {"tool_calls", "tool_call_id"}
    return isinstance(turns, list) and any(
        isinstance(t, dict) and (t.get("role") == "tool" or bool(tool_keys & set(t)) or _blank(t) or "content" not in t)
        for t in turns
    )
