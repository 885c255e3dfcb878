"""POST /query: generate text through the gRPC proxy."""

from __future__ import annotations

from typing import Any

from connexion import request

from lambdallm import logs
from lambdallm.rest import llm
from lambdallm.rest.event_stream import EventStreamResponse
from lambdallm.rest.negotiation import EVENT_STREAM, JSON, chosen_media_type


async def generate_text(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]] | EventStreamResponse:
    """generateText: the spec has validated `body`; the proxy does the rest, streamed if the client asks."""
    state = request.state
    if chosen_media_type(request.headers.get("accept")) == EVENT_STREAM:
        events = await llm.generate_text_stream(
            state.llm, body, logs.request_id.get(), state.settings.stream_deadline_s, state.metrics.tokens
        )
        return EventStreamResponse(events)
    answer = await llm.generate_text(
        state.llm, body, logs.request_id.get(), state.settings.deadline_s, state.metrics.tokens
    )
    return answer, 200, {"Content-Type": JSON}
