"""The local Bedrock's Converse boundary: Converse request and answer shapes, its stream's events, its errors."""

from __future__ import annotations

from typing import Any

from lambdallm.local_cloud.bedrock_errors import OTHER_MAX_TOKENS, TITAN_MAX_TOKENS, BedrockError
from lambdallm.local_cloud.chat_template import ChatTemplate, Conversation, TemplateError, Turn
from lambdallm.local_cloud.engines import FINISH, LENGTH, STOP, Completion, GenerationRequest
from lambdallm.local_cloud.eventstream import Frames, json_event
from lambdallm.local_cloud.models import takes_system_prompt
from lambdallm.local_cloud.titan import unit_interval
from llm_wire import strict_json

STOP_REASONS = {FINISH: "end_turn", LENGTH: "max_tokens", STOP: "stop_sequence"}
# Fields of ConverseRequest this twin does not serve (tools, guardrails, prompt management ...) are refused.
SERVED_FIELDS = ("messages", "system", "inferenceConfig")
ROLES = ("user", "assistant")
START_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
)
ALTERNATE = (
    "A conversation must alternate between user and assistant roles. Make sure the conversation alternates "
    "between user and assistant roles and try again."
)
END_WITH_USER = "A conversation must end with a user message. Try again with a conversation that ends with one."
NO_SYSTEM = "This model doesn't support system messages. Try again without system messages or with another model."


def validation(message: str) -> BedrockError:
    """A Converse ValidationException (Converse words them without InvokeModel's "Malformed input" frame)."""
    return BedrockError(400, "ValidationException", message)


def parse_request(body: bytes, model_id: str, template: ChatTemplate) -> GenerationRequest:
    """Validate a Converse body as Bedrock does for `model_id` and render it with the model's chat template."""
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise validation(f"{exc.detail}.") from exc
    if not isinstance(data, dict):
        raise validation("The request body must be a JSON object.")
    if extra := sorted(set(data) - set(SERVED_FIELDS)):
        raise validation(f"This model doesn't support the {extra[0]} field.")
    conversation = Conversation(_system(data.get("system"), model_id), _turns(data.get("messages")))
    config = data.get("inferenceConfig", {})
    if not isinstance(config, dict):
        raise validation("inferenceConfig must be an object.")
    limit = TITAN_MAX_TOKENS.get(model_id, OTHER_MAX_TOKENS)
    max_tokens = config.get("maxTokens", 512)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= limit:
        raise validation(f"The maximum tokens you requested is not within 1 and the model limit of {limit}.")
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise validation("stopSequences must be a list of non-empty strings.")
    try:
        prompt = template.render(conversation)
    except TemplateError as exc:
        raise validation(str(exc)) from exc
    return GenerationRequest(
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=_unit(config, "temperature", 0.7),
        top_p=_unit(config, "topP", 0.9),
        stop_sequences=tuple(stops),
        parse_special=True,
    )


def _turns(messages: Any) -> tuple[Turn, ...]:
    if not isinstance(messages, list) or not messages:
        raise validation(START_WITH_USER)
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise validation(f"messages.{i}.role must be one of user, assistant.")
        if message["role"] != ROLES[i % 2]:
            if i == 0:
                raise validation(START_WITH_USER)
            raise validation(ALTERNATE)
        turns.append(Turn(message["role"], _text(message.get("content"), f"messages.{i}.content")))
    if turns[-1].role != "user":
        raise validation(END_WITH_USER)
    return tuple(turns)


def _system(blocks: Any, model_id: str) -> str | None:
    if blocks is None:
        return None
    if not takes_system_prompt(model_id):
        raise validation(NO_SYSTEM)
    return _text(blocks, "system")


def _text(blocks: Any, where: str) -> str:
    """The text of a list of content blocks; this twin serves text blocks only, each non-blank."""
    if not isinstance(blocks, list) or not blocks:
        raise validation(f"{where} must be a non-empty list of content blocks.")
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or set(block) != {"text"}:
            kind = next(iter(block), "unknown") if isinstance(block, dict) else type(block).__name__
            raise validation(f"This model doesn't support the {kind} content block at {where}.{j}.")
        if not isinstance(block["text"], str) or not block["text"].strip():
            raise validation(
                f"The text field in the ContentBlock object at {where}.{j} is blank. "
                "Add text to the text field, and try again."
            )
        texts.append(block["text"])
    return "\n".join(texts)


def _unit(config: dict[str, Any], key: str, default: float) -> float:
    value = unit_interval(config.get(key, default))
    if value is None:
        raise validation(f"inferenceConfig.{key} must be a number within 0 and 1.")
    return value


def usage(completion: Completion) -> dict[str, int]:
    """Converse's token usage for a completion."""
    total = completion.input_tokens + completion.output_tokens
    return {"inputTokens": completion.input_tokens, "outputTokens": completion.output_tokens, "totalTokens": total}


def answer(completion: Completion, latency_ms: int) -> dict[str, Any]:
    """The Converse answer body for a completion."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": completion.text}]}},
        "stopReason": STOP_REASONS[completion.reason],
        "usage": usage(completion),
        "metrics": {"latencyMs": latency_ms},
    }


def _end(completion: Completion, latency_ms: int, _first_byte_ms: int) -> list[bytes]:
    return [
        json_event("contentBlockStop", {"contentBlockIndex": 0}),
        json_event("messageStop", {"stopReason": STOP_REASONS[completion.reason]}),
        json_event("metadata", {"usage": usage(completion), "metrics": {"latencyMs": latency_ms}}),
    ]


# ConverseStream's events, as Bedrock sends them for a text answer.
FRAMES = Frames(
    start=lambda: [json_event("messageStart", {"role": "assistant"})],
    piece=lambda text, _tokens: json_event("contentBlockDelta", {"delta": {"text": text}, "contentBlockIndex": 0}),
    end=_end,
)
