"""The OpenAI-compatible API under /v1 (specs/openai.yaml): thin handlers over lambdallm/rest/openai.py."""

from __future__ import annotations

from typing import Any

from connexion import request

from lambdallm import logs
from lambdallm.rest import answers, models, openai
from lambdallm.rest.event_stream import EventStreamResponse

JSON = {"Content-Type": "application/json"}
Answer = tuple[dict[str, Any], int, dict[str, str]]


async def create_chat_completion(body: dict[str, Any]) -> Answer | EventStreamResponse:
    """createChatCompletion: a chat.completion, or its chunks as server-sent events when `stream` is true."""
    answer = await answers.create_chat_completion(request.state, body, request.headers)
    return answer if isinstance(answer, EventStreamResponse) else (answer, 200, JSON)


async def create_completion(body: dict[str, Any]) -> Answer | EventStreamResponse:
    """createCompletion: the prompt continued as it is."""
    answer = await answers.create_completion(request.state, body, request.headers)
    return answer if isinstance(answer, EventStreamResponse) else (answer, 200, JSON)


async def list_models() -> Answer:
    """listModels: the models the backend serves, the default first."""
    state = request.state
    served = await models.list_models(state.llm, logs.request_id.get(), state.settings.deadline_s)
    return {"object": "list", "data": [openai.model_object(info) for info in served]}, 200, JSON


async def retrieve_model(model: str) -> Answer:
    """retrieveModel: one model the backend serves, else a 404."""
    state = request.state
    return await openai.retrieve_model(state.llm, model, logs.request_id.get(), state.settings.deadline_s), 200, JSON
