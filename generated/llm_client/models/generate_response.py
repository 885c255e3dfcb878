from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.finish_reason import FinishReason

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
            `content_filter`: the provider withheld the text.
        request_id (str):
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: FinishReason
    request_id: str

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        model = self.model

        input_tokens = self.input_tokens

        output_tokens = self.output_tokens

        finish_reason = self.finish_reason.value

        request_id = self.request_id

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

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        text = d.pop("text")

        model = d.pop("model")

        input_tokens = d.pop("input_tokens")

        output_tokens = d.pop("output_tokens")

        finish_reason = FinishReason(d.pop("finish_reason"))

        request_id = d.pop("request_id")

        generate_response = cls(
            text=text,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            request_id=request_id,
        )

        return generate_response
