"""The keyed operations' work, once for both ways in: Connexion's handlers (handlers/) and the flat path
(lambdallm/rest/flat.py). Each takes the app's state (the lifespan's `llm`, `settings`, `metrics`), the validated
body and the request's headers, and returns the answer's JSON document or its stream of events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdallm import logs
from lambdallm.rest import llm, openai
from lambdallm.rest.event_stream import EventStreamResponse
from lambdallm.rest.negotiation import EVENT_STREAM, chosen_media_type

Answer = dict[str, Any] | EventStreamResponse


async def generate_text(state: Any, body: dict[str, Any], headers: Mapping[str, str]) -> Answer:
    """generateText: one GenerateResponse, or its server-sent events when `Accept` asks for them (a 406 when it
    allows neither)."""
    if chosen_media_type(headers.get("accept")) == EVENT_STREAM:
        events = await llm.generate_text_stream(
            state.llm, body, logs.request_id.get(), state.settings.stream_deadline_s, state.metrics.tokens
        )
        return EventStreamResponse(events)
    return await llm.generate_text(
        state.llm, body, logs.request_id.get(), state.settings.deadline_s, state.metrics.tokens
    )


async def create_chat_completion(state: Any, body: dict[str, Any], headers: Mapping[str, str]) -> Answer:
    """createChatCompletion: a chat.completion, or its chunks as server-sent events when `stream` is true."""
    deadline_s = state.settings.stream_deadline_s if body.get("stream") else state.settings.deadline_s
    answer = await openai.create_chat_completion(
        state.llm, body, logs.request_id.get(), deadline_s, state.metrics.tokens
    )
    return answer if isinstance(answer, dict) else EventStreamResponse(answer)


async def create_completion(state: Any, body: dict[str, Any], headers: Mapping[str, str]) -> Answer:
    """createCompletion: the prompt continued as it is."""
    return await openai.create_completion(
        state.llm, body, logs.request_id.get(), state.settings.deadline_s, state.metrics.tokens
    )
