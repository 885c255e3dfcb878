"""JSON Schemas to llama.cpp grammars (GBNF), so that a model's output follows the schema token by token.

llama-cpp-python's `SchemaConverter` does the conversion; this module adds what it leaves out (bounds on integers
and numbers, which it ignores) and refuses what it cannot express as Bedrock does, with a 400 naming the cause.
Tool calls are written `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the Hermes form that small
instruct models are trained on); `tool_call_grammar` makes that exact form for a choice of tools.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import jsonschema
from llama_cpp.llama_grammar import SchemaConverter

from lambdallm.local_cloud.engines import Grammar

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
FRACTION = '"." [0-9] [0-9]? [0-9]? [0-9]? [0-9]? [0-9]?'  # up to six decimals: a number never runs away


# JSON allows no raw control character in a string (RFC 8259, section 7: U+0000 to U+001F must be escaped).
# llama-cpp-python's converter lets any character but `"` and `\\` in, so a model could write a raw newline inside a
# string and the answer would not parse; llama.cpp's own converter leaves them out, as this rule does.
_LOOSE_CHAR = r'char ::= [^"\\] |'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


class SchemaRefused(ValueError):
    """The schema is not a JSON Schema, or uses what no grammar here can enforce."""


def json_grammar(schema: Any) -> Grammar:
    """A grammar for one JSON value that validates against `schema`."""
    return Grammar(_convert(schema, "root"))


def tool_call_grammar(tools: Mapping[str, Any], lazy: bool = False) -> Grammar:
    """A grammar for one call of one of `tools` (name -> arguments schema), tags included. When `lazy`, the model
    may answer in text instead: the grammar takes over once it writes the opening tag."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": schema},
            "required": ["name", "arguments"],
        }
        for name, schema in tools.items()
    ]
    call = _convert(calls[0] if len(calls) == 1 else {"oneOf": calls}, "call")
    root = f"root ::= {_literal(TOOL_CALL_OPEN)} space call {_literal(TOOL_CALL_CLOSE)}\n"
    return Grammar(root + call, (TOOL_CALL_OPEN,) if lazy else ())


def _convert(schema: Any, root: str) -> str:
    if not isinstance(schema, dict):
        raise SchemaRefused("the schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaRefused(f"the schema is not a valid JSON Schema: {exc.message}") from exc
    new_converter: Any = _BoundedConverter  # llama-cpp-python's converter is untyped
    converter = new_converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        resolved = converter.resolve_refs(schema, "schema")
        converter.visit(resolved, "")
    except (AssertionError, KeyError, ValueError, RecursionError) as exc:
        raise SchemaRefused(f"the schema uses a feature structured output does not support: {exc}") from exc
    gbnf: str = converter.format_grammar().replace(_LOOSE_CHAR, _JSON_CHAR)
    if root != "root":
        gbnf = "\n".join(
            f"{root} ::={line[len('root ::=') :]}" if line.startswith("root ::=") else line
            for line in gbnf.splitlines()
        )
    return gbnf + "\n"


class _BoundedConverter(SchemaConverter):
    """llama-cpp-python's converter, plus `minimum`, `maximum` and their exclusive forms on integers and numbers."""

    def visit(self, schema: dict[str, Any], name: str) -> str:
        bounded = any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
        kind = schema.get("type")
        if bounded and kind in ("integer", "number") and not ({"enum", "const", "oneOf", "anyOf"} & set(schema)):
            rule = _bounded_number(schema, integer=kind == "integer")
            library: Any = super()
            return str(library._add_rule(name + "-" if name in ("integer", "number") else name or "root", rule))
        parent: Any = super()
        return str(parent.visit(schema, name))


def _bounded_number(schema: dict[str, Any], integer: bool) -> str:
    """A rule for the integers (or decimals) within the schema's bounds; decimals take at most six places, and
    a fractional value is offered only between whole numbers that are both within the bounds."""
    lo, lo_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    hi, hi_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    whole_lo = None if lo is None else (math.floor(lo) + 1 if lo_open else math.ceil(lo))
    whole_hi = None if hi is None else (math.ceil(hi) - 1 if hi_open else math.floor(hi))
    if whole_lo is not None and whole_hi is not None and whole_lo > whole_hi:
        raise SchemaRefused(f"no {'integer' if integer else 'number'} lies within its bounds")
    options = _integers(whole_lo, whole_hi)
    if not integer:
        # n.f (n >= 0) lies within [n, n + 1): n must be above the lower bound and n + 1 at most the upper one.
        positive_hi = None if hi is None else math.floor(hi) - 1
        positive = _naturals(max(whole_lo or 0, 0), positive_hi)
        options += [f"{digits} {FRACTION}" for digits in positive]
        # -m.f (m >= 0) lies within (-(m + 1), -m]: -m must be within the upper bound, -(m + 1) at least the lower.
        negative_lo = 0 if hi is None else max(0, (math.floor(-hi) + 1) if hi_open else math.ceil(-hi))
        negative_hi = None if lo is None else math.floor(-lo) - 1
        options += [f'"-" {digits} {FRACTION}' for digits in _naturals(negative_lo, negative_hi)]
    return "(" + " | ".join(f"({option})" for option in options) + ") space"


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, tighter: Any) -> tuple[float | None, bool]:
    """The tighter of a schema's inclusive and exclusive bound on one side, and whether it is exclusive."""
    values = []
    if isinstance(schema.get(inclusive), int | float):
        values.append((schema[inclusive], False))
    if isinstance(schema.get(exclusive), int | float) and not isinstance(schema[exclusive], bool):
        values.append((schema[exclusive], True))
    if not values:
        return None, False
    best = tighter(value for value, _ in values)
    return best, any(value == best and is_open for value, is_open in values)


def _integers(lo: int | None, hi: int | None) -> list[str]:
    """Alternatives matching exactly the integers in [lo, hi] (None: unbounded), in JSON's spelling."""
    options = []
    if lo is None or lo < 0:  # the negatives: "-" and a magnitude from max(1, -hi) to -lo
        magnitude_lo = 1 if hi is None or hi >= 0 else -hi
        options += [f'"-" {digits}' for digits in _naturals(magnitude_lo, None if lo is None else -lo)]
    if hi is None or hi >= 0:
        options += _naturals(max(lo or 0, 0), hi)
    return options


def _naturals(lo: int, hi: int | None) -> list[str]:
    """Alternatives matching exactly the numbers from `lo` to `hi` (None: any larger) without leading zeros."""
    if hi is not None and lo > hi:
        return []
    options = []
    top = hi if hi is not None else 10 ** len(str(lo)) - 1  # past it, any longer number qualifies
    for length in range(len(str(lo)), len(str(top)) + 1):
        first = max(lo, 10 ** (length - 1) if length > 1 else 0)
        last = min(top, 10**length - 1)
        if first <= last:
            options += _same_length(str(first), str(last))
    if hi is None:
        options.append(f"[1-9] {' '.join(['[0-9]'] * len(str(top)))} [0-9]*")
    return options


def _same_length(low: str, high: str) -> list[str]:
    """Digit classes matching exactly the numbers from `low` to `high`, both of the same number of digits."""
    if len(low) == 1:
        return [_digits(low, high)]
    if low[0] == high[0]:
        return [f'"{low[0]}" {rest}' for rest in _same_length(low[1:], high[1:])]
    if set(low[1:]) == {"0"} and set(high[1:]) == {"9"}:
        return [" ".join([_digits(low[0], high[0])] + ["[0-9]"] * (len(low) - 1))]
    options = [f'"{low[0]}" {rest}' for rest in _same_length(low[1:], "9" * (len(low) - 1))]
    if int(high[0]) - int(low[0]) > 1:
        middle = _digits(str(int(low[0]) + 1), str(int(high[0]) - 1))
        options.append(" ".join([middle] + ["[0-9]"] * (len(low) - 1)))
    options += [f'"{high[0]}" {rest}' for rest in _same_length("0" * (len(low) - 1), high[1:])]
    return options


def _digits(low: str, high: str) -> str:
    return f'"{low}"' if low == high else f"[{low}-{high}]"


def _literal(text: str) -> str:
    return json.dumps(text)
