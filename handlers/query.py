"""POST /query: generate text through the gRPC proxy."""

from __future__ import annotations

from typing import Any

from connexion import request

from lambdallm.rest import answers
from lambdallm.rest.event_stream import EventStreamResponse
from lambdallm.rest.negotiation import JSON


async def generate_text(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]] | EventStreamResponse:
    """generateText: the spec has validated `body`; the proxy does the rest, streamed if the client asks."""
    answer = await answers.generate_text(request.state, body, request.headers)
    return answer if isinstance(answer, EventStreamResponse) else (answer, 200, {"Content-Type": JSON})
