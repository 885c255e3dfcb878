"""Where Connexion's router writes the operation it matched (a scope extension of its own name), which the flat
path writes in its stead, and the layers around both read."""

from __future__ import annotations

from starlette.types import Scope

EXTENSION = "connexion_routing"


def operation_id(scope: Scope) -> str | None:
    """The id of the operation `scope` was routed to; None before routing, or when no operation matched."""
    routed: str | None = scope.get("extensions", {}).get(EXTENSION, {}).get("operation_id")
    return routed
