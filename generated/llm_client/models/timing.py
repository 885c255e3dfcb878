from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Timing")


@_attrs_define
class Timing:
    """A stream's Server-Timing, in its `done` event only (a whole answer has the header): milliseconds, the
    `total`, `first_token` (the time to the first token) and each tier's part (`rest`, `proxy`, `backend`,
    `model`, those known), which add up to no more than the total.

        Attributes:
            total (float):
            first_token (float | Unset):
            rest (float | Unset):
            proxy (float | Unset):
            backend (float | Unset):
            model (float | Unset):
    """

    total: float
    first_token: float | Unset = UNSET
    rest: float | Unset = UNSET
    proxy: float | Unset = UNSET
    backend: float | Unset = UNSET
    model: float | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        total = self.total

        first_token = self.first_token

        rest = self.rest

        proxy = self.proxy

        backend = self.backend

        model = self.model

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "total": total,
            }
        )
        if first_token is not UNSET:
            field_dict["first_token"] = first_token
        if rest is not UNSET:
            field_dict["rest"] = rest
        if proxy is not UNSET:
            field_dict["proxy"] = proxy
        if backend is not UNSET:
            field_dict["backend"] = backend
        if model is not UNSET:
            field_dict["model"] = model

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        total = d.pop("total")

        first_token = d.pop("first_token", UNSET)

        rest = d.pop("rest", UNSET)

        proxy = d.pop("proxy", UNSET)

        backend = d.pop("backend", UNSET)

        model = d.pop("model", UNSET)

        timing = cls(
            total=total,
            first_token=first_token,
            rest=rest,
            proxy=proxy,
            backend=backend,
            model=model,
        )

        timing.additional_properties = d
        return timing

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
