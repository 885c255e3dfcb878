"""Structured output within continuous batching: `clients` clients at once, half of them asking for a JSON Schema
answer (a grammar in their sequences), against the same clients all plain, alternated in each repetition.

Both go through the whole chain to the model that serves structured output (the Gemma id), as conversations (the
same Converse path); the schema's one string must be longer than the answer's token budget, so that every answer,
plain or structured, runs to `max_tokens` and the two batches generate the same number of tokens.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

STORY = {"type": "object", "properties": {"story": {"type": "string", "minLength": 2000}}, "required": ["story"]}
PROMPT = "Tell me a long story about a lighthouse keeper."


@dataclass(frozen=True)
class Batch:
    """One batch: the output tokens all its answers counted, and the seconds from the first request to the last
    answer."""

    tokens: int
    seconds: float
    errors: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def body(model: str, max_tokens: int, structured: bool) -> dict[str, Any]:
    """The request of one client: the same conversation, with or without the schema."""
    request: dict[str, Any] = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens}
    request |= {"model": model, "temperature": 0.7}
    return request | ({"json_schema": STORY} if structured else {})


def batch(url: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> Batch:
    """Send every body at once, one client each; count the answers' output tokens."""

    def one(request: dict[str, Any]) -> int | None:
        answer = httpx.post(url, json=request, headers=headers, timeout=300)
        return int(answer.json()["output_tokens"]) if answer.status_code == 200 else None

    started = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        counts = list(pool.map(one, bodies))
    seconds = time.perf_counter() - started
    return Batch(sum(c for c in counts if c is not None), seconds, sum(c is None for c in counts))


def plain_and_mixed(
    url: str, headers: dict[str, str], model: str, clients: int, max_tokens: int, mixed_first: bool = False
) -> tuple[Batch, Batch]:
    """`clients` plain answers at once, and the same with every other client asking for structured output, one
    batch after the other (the mixed one first if `mixed_first`: repetitions alternate, so that neither always
    runs on a machine the other has just warmed or loaded)."""
    runs: dict[bool, Batch] = {}
    for mixed in (True, False) if mixed_first else (False, True):
        runs[mixed] = batch(url, headers, [body(model, max_tokens, mixed and i % 2 == 1) for i in range(clients)])
    return runs[False], runs[True]
