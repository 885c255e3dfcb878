"""Strict JSON for request bodies: RFC 8259 (I-JSON) or a `JsonRejected` that says why, never anything else.

Python's `json.loads` takes NaN and Infinity, keeps the last of duplicate keys, lets lone surrogates through
(which fail later, when the text is encoded), and raises RecursionError or a bare ValueError on deep nesting and
huge integers. Every tier reads request bodies through `loads`, so each of those is a 400 that names its cause.
It lives with the Lambda because the function's package ships alone; the other tiers import it from here.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # far beyond any body of the contracts, far below the parser's recursion limit
_MAX_INT_DIGITS = 400  # an integer of the contracts has 4 digits; Python refuses over 4300 with a bare ValueError


class JsonRejected(ValueError):
    """A body that is not strict JSON; `detail` says why without quoting the body."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def loads(body: bytes | str) -> Any:
    """The JSON value of `body` (bytes must be UTF-8, without a byte order mark), or `JsonRejected`."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected("the request body is not UTF-8") from exc
    try:
        value = json.loads(
            body,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except JsonRejected:
        raise
    except RecursionError as exc:
        raise JsonRejected(f"the request body is nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # json.JSONDecodeError's message says where, never what
        where = f": {exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise JsonRejected(f"the request body is not valid JSON{where}") from exc
    _check(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRejected(f"{_short(key)}: duplicate field")
            seen.add(key)
    return value


def _no_constant(name: str) -> Any:
    raise JsonRejected(f"the request body is not valid JSON: {name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:  # digits, not the sign
        raise JsonRejected(f"the request body has an integer of more than {_MAX_INT_DIGITS} digits")
    return int(digits)


def _finite_float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise JsonRejected("the request body has a number too large for a double")
    return value


def _check(value: Any) -> None:
    """Depth and lone surrogates (text that cannot be UTF-8), walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise JsonRejected(f"the request body is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    _text(key)
                item = item.values()
            pending.extend((child, depth + 1) for child in item)


def _text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonRejected("the request body has a string that is not valid Unicode (a lone surrogate)") from exc


def _short(name: str) -> str:
    name = name.encode("utf-8", "replace").decode("utf-8")
    return name if len(name) <= 64 else name[:64] + "..."
