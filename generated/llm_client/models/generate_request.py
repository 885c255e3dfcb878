from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.generate_request_tool_choice_type_0 import GenerateRequestToolChoiceType0
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.generate_request_json_schema import GenerateRequestJsonSchema
    from ..models.generate_request_tool_choice_type_1 import (
        GenerateRequestToolChoiceType1,
    )
    from ..models.message import Message
    from ..models.tool import Tool


T = TypeVar("T", bound="GenerateRequest")


@_attrs_define
class GenerateRequest:
    """Exactly one of `prompt` (text the model continues) and `messages` (a conversation the model answers,
    with an optional `system` text) is required; sending both, or neither, is a 400 naming the two fields.
    `messages` starts with a `user` turn, alternates `user` and `assistant`, and ends with `user`; all its
    text (its tool calls' arguments included) and `system` together are at most 32000 characters.

        Attributes:
            max_tokens (int): Upper bound on generated tokens.
            prompt (str | Unset): The text for the model: an instruct model (Titan Text Premier, the local default) reads it
                as an
                instruction and answers it, as Titan reads its inputText; a base model continues it as it is.
            messages (list[Message] | Unset): The conversation so far, oldest first: `user`, `assistant`, `user`, ... ending
                with `user`.
                The model answers the last turn with the earlier turns as context.
            system (str | Unset): Instructions for the whole conversation (only with `messages`). For a model that takes no
                system
                prompt (Amazon Titan Text), the backend puts it before the first user turn.
            temperature (float | Unset): Sampling temperature; 0 is greedy. The model's default when absent.
            top_p (float | Unset): Nucleus sampling probability mass. The model's default when absent.
            stop_sequences (list[str] | Unset): Generation stops before any of these strings.
            model (str | Unset): The model to use, one of the ids `GET /models` lists; absent, the deployment's default (the
                first
                listed). An id it does not serve is a 404 naming the ones it does.
            continuation (bool | Unset): Only with `prompt` (absent: false): ask for the prompt to be continued as plain
                text rather than read as
                an instruction. A base model (`instruct: false` in `GET /models`) continues text either way; an instruct
                model reads a prompt as an instruction and answers it, and still does with `continuation` (Bedrock has no
                raw-continuation mode for it: Titan Text Premier, and locally the default SmolLM2-Instruct).
            tools (list[Tool] | Unset): Functions the model may call instead of answering in text (names unique); only with
                `messages`, and only
                on a model that can use tools (not Titan Text: a 400 naming the model). The answer's `tool_calls` then
                holds the calls, with `finish_reason` `tool_calls`; send each result back as a `tool` turn. All the
                tools' descriptions and parameters (as JSON text) together are at most 32000 characters.
            tool_choice (GenerateRequestToolChoiceType0 | GenerateRequestToolChoiceType1 | Unset): Only with `tools`
                (absent: `auto`): `auto` (text or a call, as the model sees fit), `required` (a call of
                one of the tools), `none` (text; the tools are only described), or `{"name": ...}` (a call of that tool).
            json_schema (GenerateRequestJsonSchema | Unset): Structured output: a JSON Schema that the answer's `text`
                follows (it parses as JSON and validates), at
                most 16000 characters as JSON; not with `tools`. A model that cannot is a 400 naming it.
    """

    max_tokens: int
    prompt: str | Unset = UNSET
    messages: list[Message] | Unset = UNSET
    system: str | Unset = UNSET
    temperature: float | Unset = UNSET
    top_p: float | Unset = UNSET
    stop_sequences: list[str] | Unset = UNSET
    model: str | Unset = UNSET
    continuation: bool | Unset = UNSET
    tools: list[Tool] | Unset = UNSET
    tool_choice: (
        GenerateRequestToolChoiceType0 | GenerateRequestToolChoiceType1 | Unset
    ) = UNSET
    json_schema: GenerateRequestJsonSchema | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        max_tokens = self.max_tokens

        prompt = self.prompt

        messages: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.messages, Unset):
            messages = []
            for messages_item_data in self.messages:
                messages_item = messages_item_data.to_dict()
                messages.append(messages_item)

        system = self.system

        temperature = self.temperature

        top_p = self.top_p

        stop_sequences: list[str] | Unset = UNSET
        if not isinstance(self.stop_sequences, Unset):
            stop_sequences = self.stop_sequences

        model = self.model

        continuation = self.continuation

        tools: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.tools, Unset):
            tools = []
            for tools_item_data in self.tools:
                tools_item = tools_item_data.to_dict()
                tools.append(tools_item)

        tool_choice: dict[str, Any] | str | Unset
        if isinstance(self.tool_choice, Unset):
            tool_choice = UNSET
        elif isinstance(self.tool_choice, GenerateRequestToolChoiceType0):
            tool_choice = self.tool_choice.value
        else:
            tool_choice = self.tool_choice.to_dict()

        json_schema: dict[str, Any] | Unset = UNSET
        if not isinstance(self.json_schema, Unset):
            json_schema = self.json_schema.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "max_tokens": max_tokens,
            }
        )
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if messages is not UNSET:
            field_dict["messages"] = messages
        if system is not UNSET:
            field_dict["system"] = system
        if temperature is not UNSET:
            field_dict["temperature"] = temperature
        if top_p is not UNSET:
            field_dict["top_p"] = top_p
        if stop_sequences is not UNSET:
            field_dict["stop_sequences"] = stop_sequences
        if model is not UNSET:
            field_dict["model"] = model
        if continuation is not UNSET:
            field_dict["continuation"] = continuation
        if tools is not UNSET:
            field_dict["tools"] = tools
        if tool_choice is not UNSET:
            field_dict["tool_choice"] = tool_choice
        if json_schema is not UNSET:
            field_dict["json_schema"] = json_schema

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.generate_request_json_schema import GenerateRequestJsonSchema
        from ..models.generate_request_tool_choice_type_1 import (
            GenerateRequestToolChoiceType1,
        )
        from ..models.message import Message
        from ..models.tool import Tool

        d = dict(src_dict)
        max_tokens = d.pop("max_tokens")

        prompt = d.pop("prompt", UNSET)

        _messages = d.pop("messages", UNSET)
        messages: list[Message] | Unset = UNSET
        if _messages is not UNSET:
            messages = []
            for messages_item_data in _messages:
                messages_item = Message.from_dict(messages_item_data)

                messages.append(messages_item)

        system = d.pop("system", UNSET)

        temperature = d.pop("temperature", UNSET)

        top_p = d.pop("top_p", UNSET)

        stop_sequences = cast(list[str], d.pop("stop_sequences", UNSET))

        model = d.pop("model", UNSET)

        continuation = d.pop("continuation", UNSET)

        _tools = d.pop("tools", UNSET)
        tools: list[Tool] | Unset = UNSET
        if _tools is not UNSET:
            tools = []
            for tools_item_data in _tools:
                tools_item = Tool.from_dict(tools_item_data)

                tools.append(tools_item)

        def _parse_tool_choice(
            data: object,
        ) -> GenerateRequestToolChoiceType0 | GenerateRequestToolChoiceType1 | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                tool_choice_type_0 = GenerateRequestToolChoiceType0(data)

                return tool_choice_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            tool_choice_type_1 = GenerateRequestToolChoiceType1.from_dict(data)

            return tool_choice_type_1

        tool_choice = _parse_tool_choice(d.pop("tool_choice", UNSET))

        _json_schema = d.pop("json_schema", UNSET)
        json_schema: GenerateRequestJsonSchema | Unset
        if isinstance(_json_schema, Unset):
            json_schema = UNSET
        else:
            json_schema = GenerateRequestJsonSchema.from_dict(_json_schema)

        generate_request = cls(
            max_tokens=max_tokens,
            prompt=prompt,
            messages=messages,
            system=system,
            temperature=temperature,
            top_p=top_p,
            stop_sequences=stop_sequences,
            model=model,
            continuation=continuation,
            tools=tools,
            tool_choice=tool_choice,
            json_schema=json_schema,
        )

        return generate_request
