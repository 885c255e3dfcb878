from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="StreamToolCall")


@_attrs_define
class StreamToolCall:
    """The `data` of a streamed `tool_call` event: a call's first piece has `index`, `id` and `name`, the next
    ones `index` and a fragment of `arguments`; the fragments of one index, joined, are that call's arguments.

        Attributes:
            index (int):
            id (str | Unset):
            name (str | Unset):
            arguments (str | Unset):
    """

    index: int
    id: str | Unset = UNSET
    name: str | Unset = UNSET
    arguments: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        index = self.index

        id = self.id

        name = self.name

        arguments = self.arguments

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "index": index,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id
        if name is not UNSET:
            field_dict["name"] = name
        if arguments is not UNSET:
            field_dict["arguments"] = arguments

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        index = d.pop("index")

        id = d.pop("id", UNSET)

        name = d.pop("name", UNSET)

        arguments = d.pop("arguments", UNSET)

        stream_tool_call = cls(
            index=index,
            id=id,
            name=name,
            arguments=arguments,
        )

        return stream_tool_call
