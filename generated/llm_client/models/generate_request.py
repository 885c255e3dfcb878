from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="GenerateRequest")


@_attrs_define
class GenerateRequest:
    """
    Attributes:
        prompt (str): The text the model continues.
        max_tokens (int): Upper bound on generated tokens.
        temperature (float | Unset): Sampling temperature; 0 is greedy. The model's default when absent.
        top_p (float | Unset): Nucleus sampling probability mass. The model's default when absent.
        stop_sequences (list[str] | Unset): Generation stops before any of these strings.
    """

    prompt: str
    max_tokens: int
    temperature: float | Unset = UNSET
    top_p: float | Unset = UNSET
    stop_sequences: list[str] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        prompt = self.prompt

        max_tokens = self.max_tokens

        temperature = self.temperature

        top_p = self.top_p

        stop_sequences: list[str] | Unset = UNSET
        if not isinstance(self.stop_sequences, Unset):
            stop_sequences = self.stop_sequences

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "prompt": prompt,
                "max_tokens": max_tokens,
            }
        )
        if temperature is not UNSET:
            field_dict["temperature"] = temperature
        if top_p is not UNSET:
            field_dict["top_p"] = top_p
        if stop_sequences is not UNSET:
            field_dict["stop_sequences"] = stop_sequences

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        prompt = d.pop("prompt")

        max_tokens = d.pop("max_tokens")

        temperature = d.pop("temperature", UNSET)

        top_p = d.pop("top_p", UNSET)

        stop_sequences = cast(list[str], d.pop("stop_sequences", UNSET))

        generate_request = cls(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop_sequences=stop_sequences,
        )

        return generate_request
