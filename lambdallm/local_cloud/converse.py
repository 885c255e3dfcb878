"""The local Bedrock's Converse boundary: Converse request and answer shapes, its stream's events, its errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambdallm.local_cloud import call_reader, tool_use
from lambdallm.local_cloud.bedrock_errors import OTHER_MAX_TOKENS, TITAN_MAX_TOKENS, BedrockError
from lambdallm.local_cloud.chat_template import ChatTemplate, Conversation, TemplateError, Turn
from lambdallm.local_cloud.engines import FINISH, LENGTH, STOP, Completion, GenerationRequest, Grammar
from lambdallm.local_cloud.eventstream import Frames, json_event
from lambdallm.local_cloud.grammar import json_grammar
from lambdallm.local_cloud.models import takes_system_prompt
from lambdallm.local_cloud.titan import unit_interval
from llm_wire import strict_json

STOP_REASONS = {FINISH: "end_turn", LENGTH: "max_tokens", STOP: "stop_sequence"}
# Fields of ConverseRequest this twin does not serve (guardrails, prompt management ...) are refused.
SERVED_FIELDS = ("messages", "system", "inferenceConfig", "toolConfig", "outputConfig")
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


@dataclass(frozen=True)
class ConverseRequest:
    """A Converse request as the model runs it, and whether its answer may hold tool calls."""

    generation: GenerationRequest
    tools: tool_use.Tools | None = None


def parse_request(
    body: bytes, model_id: str, template: ChatTemplate, grammars: bool = True, continues: bool = False
) -> ConverseRequest:
    """Validate a Converse body as Bedrock does for `model_id` and render it with the model's chat template.
    `grammars` says whether the engine can hold its text to a grammar (tool use and structured output); for a
    base model (`continues`), one user turn without system text is that text, which the model continues."""
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise validation(f"{exc.detail}.") from exc
    if not isinstance(data, dict):
        raise validation("The request body must be a JSON object.")
    if extra := sorted(set(data) - set(SERVED_FIELDS)):
        raise validation(f"This model doesn't support the {extra[0]} field.")
    for key, feature in (("toolConfig", "tool use"), ("outputConfig", "structured output")):
        if key in data:
            tool_use.refuse_unless_served(model_id, feature)
            if not grammars:
                raise validation(f"This model ({model_id}, the local echo engine) doesn't support {feature}.")
    tools = tool_use.parse_tools(data["toolConfig"]) if "toolConfig" in data else None
    schema = tool_use.parse_output_schema(data["outputConfig"]) if "outputConfig" in data else None
    if tools is not None and schema is not None:
        raise validation("A request takes toolConfig or outputConfig, not both.")
    system = _system(data.get("system"), model_id)
    extra_system = tools.system_text() if tools else tool_use.schema_text(schema) if schema is not None else None
    if extra_system:
        system = f"{system}\n\n{extra_system}" if system else extra_system
    grammar: Grammar | None = tools.grammar() if tools else json_grammar(schema) if schema else None
    conversation = Conversation(system, _turns(data.get("messages"), tools is not None))
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
    plain = continues and conversation.system is None and len(conversation.turns) == 1
    try:
        prompt = conversation.turns[0].content if plain else template.render(conversation)
    except TemplateError as exc:
        raise validation(str(exc)) from exc
    generation = GenerationRequest(
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=_unit(config, "temperature", 0.7),
        top_p=_unit(config, "topP", 0.9),
        stop_sequences=tuple(stops),
        parse_special=not plain,
        grammar=grammar,
    )
    return ConverseRequest(generation, tools)


def _turns(messages: Any, with_tools: bool) -> tuple[Turn, ...]:
    if not isinstance(messages, list) or not messages:
        raise validation(START_WITH_USER)
    turns: list[Turn] = []
    calls: set[str] = set()  # the toolUseIds of the last assistant turn, each answered once in the next turn
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise validation(f"messages.{i}.role must be one of user, assistant.")
        if message["role"] != ROLES[i % 2]:
            if i == 0:
                raise validation(START_WITH_USER)
            raise validation(ALTERNATE)
        text, calls = _content(message.get("content"), f"messages.{i}.content", message["role"], calls, with_tools)
        turns.append(Turn(message["role"], text))
    if turns[-1].role != "user":
        raise validation(END_WITH_USER)
    return tuple(turns)


def _content(blocks: Any, where: str, role: str, calls: set[str], with_tools: bool) -> tuple[str, set[str]]:
    """A turn's text, its tool calls and results written as the model reads them; the ids this turn calls."""
    if not isinstance(blocks, list) or not blocks:
        raise validation(f"{where} must be a non-empty list of content blocks.")
    texts: list[str] = []
    called: set[str] = set()
    answered: set[str] = set()
    for j, block in enumerate(blocks):
        kind = next(iter(block), "") if isinstance(block, dict) and len(block) == 1 else ""
        if kind in ("toolUse", "toolResult") and not with_tools:
            raise validation("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
        if kind == "toolUse" and role == "assistant":
            call = block["toolUse"]
            if not isinstance(call, dict) or not isinstance(call.get("toolUseId"), str) or "input" not in call:
                raise validation(f"{where}.{j}.toolUse must have a toolUseId, a name and an input.")
            called.add(call["toolUseId"])
            texts.append(tool_use.call_text(str(call.get("name")), call["input"]))
        elif kind == "toolResult" and role == "user":
            result = block["toolResult"]
            if not isinstance(result, dict) or result.get("toolUseId") not in calls - answered:
                raise validation(
                    f"{where}.{j}.toolResult answers no toolUse block of the previous turn (its toolUseId "
                    f"{result.get('toolUseId') if isinstance(result, dict) else None!r})."
                )
            answered.add(result["toolUseId"])
            texts.append(tool_use.result_text(_result_content(result.get("content"), f"{where}.{j}.toolResult")))
        else:
            texts.append(_block_text(block, f"{where}.{j}"))
    return "\n".join(texts), called


def _result_content(blocks: Any, where: str) -> str:
    if not isinstance(blocks, list) or not blocks:
        raise validation(f"{where}.content must be a non-empty list of text or json blocks.")
    parts = []
    for block in blocks:
        if isinstance(block, dict) and set(block) == {"json"}:
            parts.append(json.dumps(block["json"]))
        elif isinstance(block, dict) and set(block) == {"text"} and isinstance(block["text"], str):
            parts.append(block["text"])
        else:
            raise validation(f"{where}.content must be a list of text or json blocks.")
    return "\n".join(parts)


def _system(blocks: Any, model_id: str) -> str | None:
    if blocks is None:
        return None
    if not takes_system_prompt(model_id):
        raise validation(NO_SYSTEM)
    return _text(blocks, "system")


def _text(blocks: Any, where: str) -> str:
    """The text of a list of content blocks (a system's: text blocks only, each non-blank)."""
    if not isinstance(blocks, list) or not blocks:
        raise validation(f"{where} must be a non-empty list of content blocks.")
    return "\n".join(_block_text(block, f"{where}.{j}") for j, block in enumerate(blocks))


def _block_text(block: Any, where: str) -> str:
    """A text block's text; this twin serves no other content (images, documents ...), and no blank text."""
    if not isinstance(block, dict) or set(block) != {"text"}:
        kind = next(iter(block), "unknown") if isinstance(block, dict) else type(block).__name__
        raise validation(f"This model doesn't support the {kind} content block at {where}.")
    if not isinstance(block["text"], str) or not block["text"].strip():
        raise validation(
            f"The text field in the ContentBlock object at {where} is blank. Add text to the text field, and try again."
        )
    return str(block["text"])


def _unit(config: dict[str, Any], key: str, default: float) -> float:
    value = unit_interval(config.get(key, default))
    if value is None:
        raise validation(f"inferenceConfig.{key} must be a number within 0 and 1.")
    return value


def usage(completion: Completion) -> dict[str, int]:
    """Converse's token usage for a completion."""
    total = completion.input_tokens + completion.output_tokens
    return {"inputTokens": completion.input_tokens, "outputTokens": completion.output_tokens, "totalTokens": total}


def answer(completion: Completion, latency_ms: int, request: ConverseRequest | None = None) -> dict[str, Any]:
    """The Converse answer body for a completion; with tools, its calls as toolUse blocks (stopReason tool_use)."""
    content: list[dict[str, Any]] = [{"text": completion.text}]
    stop_reason = STOP_REASONS[completion.reason]
    if request is not None and request.tools is not None:
        content = list(call_reader.content_blocks(completion.text)) or [{"text": ""}]
        if completion.reason != LENGTH and any("toolUse" in block for block in content):
            stop_reason = "tool_use"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
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


def frames(request: ConverseRequest) -> Frames:
    """ConverseStream's events for `request`: FRAMES for text, or a reader's events when tools may be called."""
    if request.tools is None:
        return FRAMES
    reader, block = call_reader.CallReader(), _Block()

    def piece(text: str, _tokens: int) -> bytes:
        return b"".join(block.events(reader.feed(text)))

    def end(completion: Completion, latency_ms: int, _first_byte_ms: int) -> list[bytes]:
        events = list(block.events(reader.finish()))
        if block.text_open:
            events.append(json_event("contentBlockStop", {"contentBlockIndex": block.index}))
        reason = STOP_REASONS[completion.reason]
        if block.calls and completion.reason != LENGTH:
            reason = "tool_use"
        return [
            *events,
            json_event("messageStop", {"stopReason": reason}),
            json_event("metadata", {"usage": usage(completion), "metrics": {"latencyMs": latency_ms}}),
        ]

    return Frames(start=FRAMES.start, piece=piece, end=end)


class _Block:
    """Where a tool-using stream stands: the content block it is in, and whether that block is text."""

    def __init__(self) -> None:
        self.index, self.text_open, self.calls = 0, False, 0

    def events(self, read: list[tuple[str, ...]]) -> list[bytes]:
        """ConverseStream events for what a CallReader read."""
        out = []
        for event in read:
            if event[0] == "text":
                self.text_open = True
                out.append(
                    json_event("contentBlockDelta", {"delta": {"text": event[1]}, "contentBlockIndex": self.index})
                )
                continue
            if event[0] == "start":
                if self.text_open:
                    out.append(json_event("contentBlockStop", {"contentBlockIndex": self.index}))
                    self.index, self.text_open = self.index + 1, False
                start = {"toolUse": {"toolUseId": event[1], "name": event[2]}}
                out.append(json_event("contentBlockStart", {"start": start, "contentBlockIndex": self.index}))
            elif event[0] == "input":
                delta = {"toolUse": {"input": event[1]}}
                out.append(json_event("contentBlockDelta", {"delta": delta, "contentBlockIndex": self.index}))
            elif event[0] == "stop":
                out.append(json_event("contentBlockStop", {"contentBlockIndex": self.index}))
                self.index, self.calls = self.index + 1, self.calls + 1
        return out
