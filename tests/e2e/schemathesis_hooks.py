"""Schemathesis hooks for the rule of a conversation that OpenAPI 3.0 cannot state (the specs say it in words):
turns alternating from `user` to `user`. (Exactly one of `prompt` and `messages`, and no `system` beside a prompt,
the specs state as a oneOf and a not.)

Generated turns are put in order, so that `positive_data_acceptance` judges the rules the schema does state; the
cross-field rules have tests of their own (tests/rest, tests/e2e/test_chain.py).
"""

from __future__ import annotations

from typing import Any

import schemathesis

ROLES = ("user", "assistant")
MAX_TURNS = 99


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Put well-formed turns in conversation order: user, assistant, ..., user."""
    turns = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and t.get("role") in ROLES for t in turns):
        return body  # not a list of well-formed turns: whatever is wrong stays wrong
    for index, turn in enumerate(turns):
        turn["role"] = ROLES[index % 2]
    if len(turns) % 2 == 0 and 2 <= len(turns) <= MAX_TURNS:
        turns.pop()
    return body
