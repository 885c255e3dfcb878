from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.finish_reason import FinishReason
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.timing import Timing
    from ..models.tool_call import ToolCall


T = TypeVar("T", bound="GenerateResponse")


@_attrs_define
class GenerateResponse:
    """
    Attributes:
        text (str): The generated text, without the prompt (for a conversation, the assistant's answer).
        model (str): The model that produced the text.
        input_tokens (int):
        output_tokens (int):
        finish_reason (FinishReason): `stop`: the model ended the text or hit a stop sequence; `length`: `max_tokens`
            was reached;
            `content_filter`: the provider withheld the text; `tool_calls`: the model called tools.
        request_id (str):
        tool_calls (list[ToolCall] | Unset): The tools the model called, in order (`finish_reason` is then
            `tool_calls`).
        timing (Timing | Unset): A stream's Server-Timing, in its `done` event only (a whole answer has the header):
            milliseconds, the
            `total`, `first_token` (the time to the first token) and each tier's part (`rest`, `proxy`, `backend`,
            `model`, those known), which add up to no more than the total.
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: FinishReason
    request_id: str
    tool_calls: list[ToolCall] | Unset = UNSET
    timing: Timing | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        model = self.model

        input_tokens = self.input_tokens

        output_tokens = self.output_tokens

        finish_reason = self.finish_reason.value

        request_id = self.request_id

        tool_calls: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.tool_calls, Unset):
            tool_calls = []
            for tool_calls_item_data in self.tool_calls:
                tool_calls_item = tool_calls_item_data.to_dict()
                tool_calls.append(tool_calls_item)

        timing: dict[str, Any] | Unset = UNSET
        if not isinstance(self.timing, Unset):
            timing = self.timing.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "text": text,
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "finish_reason": finish_reason,
                "request_id": request_id,
            }
        )
        if tool_calls is not UNSET:
            field_dict["tool_calls"] = tool_calls
        if timing is not UNSET:
            field_dict["timing"] = timing

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.timing import Timing
        from ..models.tool_call import ToolCall

        d = dict(src_dict)
        text = d.pop("text")

        model = d.pop("model")

        input_tokens = d.pop("input_tokens")

        output_tokens = d.pop("output_tokens")

        finish_reason = FinishReason(d.pop("finish_reason"))

        request_id = d.pop("request_id")

        _tool_calls = d.pop("tool_calls", UNSET)
        tool_calls: list[ToolCall] | Unset = UNSET
        if _tool_calls is not UNSET:
            tool_calls = []
            for tool_calls_item_data in _tool_calls:
                tool_calls_item = ToolCall.from_dict(tool_calls_item_data)

                tool_calls.append(tool_calls_item)

        _timing = d.pop("timing", UNSET)
        timing: Timing | Unset
        if isinstance(_timing, Unset):
            timing = UNSET
        else:
            timing = Timing.from_dict(_timing)

        generate_response = cls(
            text=text,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            request_id=request_id,
            tool_calls=tool_calls,
            timing=timing,
        )

        return generate_response
