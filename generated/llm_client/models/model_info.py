from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ModelInfo")


@_attrs_define
class ModelInfo:
    """
    Attributes:
        id (str): The id a request's `model` names it by (a Bedrock model id or inference profile id).
        owned_by (str): Who makes the model (`amazon`, `anthropic`, `meta`, `google` ...).
        instruct (bool): True: the model follows instructions (a prompt is answered); false: a base model, which
            continues
            the text it is given.
    """

    id: str
    owned_by: str
    instruct: bool

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        owned_by = self.owned_by

        instruct = self.instruct

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "owned_by": owned_by,
                "instruct": instruct,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        owned_by = d.pop("owned_by")

        instruct = d.pop("instruct")

        model_info = cls(
            id=id,
            owned_by=owned_by,
            instruct=instruct,
        )

        return model_info
