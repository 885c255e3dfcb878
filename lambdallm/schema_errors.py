"""JSON Schema violations in words that name the field and the rule, never the rejected value.

jsonschema's own messages quote the instance (a 32,000-character prompt comes back whole), so the REST tier's
validators and the local API Gateway describe errors with this instead, for their answers and their logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match

_MAX_NAME = 64  # an unknown key is named, but a key is client text too: keep it short

_RULES: dict[str, str] = {
    "type": "must be of type {}",
    "minLength": "must be at least {} characters",
    "maxLength": "must be at most {} characters",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be above the minimum",
    "exclusiveMaximum": "must be below the maximum",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "pattern": "must match {}",
    "format": "must be a valid {}",
    "multipleOf": "must be a multiple of {}",
    "uniqueItems": "must not repeat items",
    "minProperties": "must have at least {} fields",
    "maxProperties": "must have at most {} fields",
}


def describe(error: ValidationError, name: str | None = None) -> str:
    """`<field>: <rule>` for one violation; `name` names the whole instance (a parameter), else `body`."""
    where = _path(error.absolute_path, name)
    rule = error.validator
    if rule == "required":
        missing = [key for key in error.validator_value if key not in (error.instance or {})]
        return f"{_join(where, missing[0] if missing else '?')}: required"
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in known)
        return f"{_join(where, _short(unknown[0]) if unknown else '?')}: unknown field"
    if rule == "oneOf" and isinstance(error.instance, dict) and (detail := _exactly_one(error, where)) is not None:
        return detail
    if rule == "not" and isinstance(error.validator_value, dict) and (detail := _not_together(error, where)):
        return detail
    if rule == "enum":
        return f"{where}: must be one of {', '.join(map(str, error.validator_value))}"
    if rule == "type" and isinstance(error.validator_value, list):
        return f"{where}: must be of type {' or '.join(error.validator_value)}"
    if (template := _RULES.get(str(rule))) is not None:
        return f"{where}: {template.format(error.validator_value)}"
    return f"{where}: does not satisfy {rule}"


def _exactly_one(error: ValidationError, where: str) -> str | None:
    """A oneOf whose branches each require one field (`prompt` or `messages`): those fields, of which the instance
    sent both or neither; None for any other oneOf."""
    branches: list[dict[str, Any]] = list(error.validator_value)
    fields = [str(branch["required"][0]) for branch in branches if len(branch.get("required", ())) == 1]
    if len(fields) != len(branches):
        return None
    count = {2: "two"}.get(len(fields), str(len(fields)))
    return f"{', '.join(_join(where, field) for field in fields)}: exactly one of the {count} is required"


def _not_together(error: ValidationError, where: str) -> str | None:
    """A `not` of required fields (`prompt` and `system`): the last of them, not with the others; else None."""
    fields = [str(field) for field in error.validator_value.get("required", ())]
    if len(fields) < 2 or len(error.validator_value) != 1:
        return None
    return f"{_join(where, fields[-1])}: not with {', '.join(fields[:-1])}"


def first_error(errors: Iterable[ValidationError], name: str | None = None) -> str | None:
    """The description of the most relevant of `errors` (jsonschema's best match), or None if there are none."""
    error = best_match(errors)
    return None if error is None else describe(error, name)


def _path(parts: Iterable[Any], name: str | None) -> str:
    where = name or ""
    for part in parts:
        where = f"{where}[{part}]" if isinstance(part, int) else _join(where, _short(str(part)))
    return where or "body"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where and where != "body" else key


def _short(name: str) -> str:
    return name if len(name) <= _MAX_NAME else name[:_MAX_NAME] + "..."
