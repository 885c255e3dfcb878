"""POST /query: generate text through the gRPC proxy."""

from __future__ import annotations

from typing import Any

from connexion import request

from lambdallm import logs
from lambdallm.rest import llm

JSON = {"Content-Type": "application/json"}


async def generate_text(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """generateText: the spec has validated `body`; the proxy does the rest."""
    state = request.state
    answer = await llm.generate_text(state.llm, body, logs.request_id.get(), state.settings.deadline_s)
    return answer, 200, JSON
