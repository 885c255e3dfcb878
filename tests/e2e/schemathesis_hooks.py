"""Schemathesis hooks for the rules of a conversation that OpenAPI 3.0 cannot state (the specs say them in words):
turns alternating from `user` to `user`, and the tool rules (a call answered by the tool turn after it, a
tool_choice naming one of the tools). (Exactly one of `prompt` and `messages`, and no `system` beside a prompt,
the specs state as a oneOf and a not.)

Generated turns are put in order, and tools and structured output are left out (the fuzzed chain runs the echo
engine, which follows no grammar and refuses them, as a model without the feature does): `positive_data_acceptance`
judges the rules the schema does state; the cross-field rules have tests of their own (tests/rest,
tests/e2e/test_chain.py, tests/e2e/test_tools.py).
"""

from __future__ import annotations

from typing import Any

import schemathesis

ROLES = ("user", "assistant")
MAX_TURNS = 99


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Put well-formed turns in conversation order: user, assistant, ..., user, without tool calls or results;
    leave out tools and structured output."""
    for key in ("tools", "tool_choice", "json_schema"):
        if isinstance(body, dict):
            body.pop(key, None)
    turns = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and t.get("role") in (*ROLES, "tool") for t in turns):
        return body  # not a list of well-formed turns: whatever is wrong stays wrong
    for index, turn in enumerate(turns):
        turn["role"] = ROLES[index % 2]
        turn.pop("tool_call_id", None)
        if turn.pop("tool_calls", None) is not None and "content" not in turn:
            turn["content"] = "Hi"
    if len(turns) % 2 == 0 and 2 <= len(turns) <= MAX_TURNS:
        turns.pop()
    return body


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    """Keep a body unless it asks for `continuation` of a conversation (only `true` is refused, which a `not` in
    the spec could not say without refusing `false` too)."""
    return not (isinstance(body, dict) and body.get("continuation") is True and "messages" in body)
