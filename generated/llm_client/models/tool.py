from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.tool_parameters import ToolParameters


T = TypeVar("T", bound="Tool")


@_attrs_define
class Tool:
    """
    Attributes:
        name (str):
        parameters (ToolParameters): The JSON Schema of the arguments, an object schema (with `"type": "object"`).
        description (str | Unset):
    """

    name: str
    parameters: ToolParameters
    description: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        parameters = self.parameters.to_dict()

        description = self.description

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "parameters": parameters,
            }
        )
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.tool_parameters import ToolParameters

        d = dict(src_dict)
        name = d.pop("name")

        parameters = ToolParameters.from_dict(d.pop("parameters"))

        description = d.pop("description", UNSET)

        tool = cls(
            name=name,
            parameters=parameters,
            description=description,
        )

        return tool
