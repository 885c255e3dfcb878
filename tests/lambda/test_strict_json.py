"""The strict JSON reader every tier shares: each refusal's exact words, and the bounds at their edges."""

from __future__ import annotations

import json

import pytest

from llm_wire import strict_json
from llm_wire.strict_json import MAX_DEPTH, JsonRejected, loads


def refusal(body: bytes | str) -> str:
    with pytest.raises(JsonRejected) as caught:
        loads(body)
    assert str(caught.value) == caught.value.detail  # the exception reads as its detail, in logs too
    return caught.value.detail


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"a": "\xff"}', "the request body is not UTF-8"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"the request body is nested deeper than {MAX_DEPTH} levels"),
        (b"[" * 5000 + b"]" * 5000, f"the request body is nested deeper than {MAX_DEPTH} levels"),  # RecursionError
        (b'{"a": 1,}', "the request body is not valid JSON: Expecting property name enclosed in double quotes"
                       " at line 1 column 9"),
        (b"[1, 2", "the request body is not valid JSON: Expecting ',' delimiter at line 1 column 6"),
        (b'{"a": NaN}', "the request body is not valid JSON: NaN is not a JSON number"),
        (b"[-Infinity]", "the request body is not valid JSON: -Infinity is not a JSON number"),
        (b"1" * 401, "the request body has an integer of more than 400 digits"),
        (b"1e999", "the request body has a number too large for a double"),
        (b'["\\ud800"]', "the request body has a string that is not valid Unicode (a lone surrogate)"),
        (b'{"\\udfff": 1}', "the request body has a string that is not valid Unicode (a lone surrogate)"),
    ],
)  # fmt: skip
def test_each_refusal_says_why_in_its_own_words(body: bytes, detail: str) -> None:
    assert refusal(body) == detail


def test_a_byte_order_mark_is_refused() -> None:
    assert refusal("\ufeff{}".encode()).startswith("the request body is not valid JSON: ")


def test_nesting_of_exactly_max_depth_levels_is_read() -> None:
    assert loads(b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH) is not None
    assert loads('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH) is not None
    assert refusal('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)).endswith(f"deeper than {MAX_DEPTH} levels")


def test_integers_of_400_digits_are_read() -> None:
    assert loads(b"9" * 400) == int("9" * 400)
    assert loads(b"-" + b"9" * 400) == -int("9" * 400)


def test_a_duplicate_key_is_named_even_after_other_keys() -> None:
    assert refusal(b'{"max_tokens": 5, "prompt": "a", "prompt": "b"}') == "prompt: duplicate field"
    assert refusal(b'{"a": {"x": 1, "y": 2, "y": 3}}') == "y: duplicate field"


def test_a_duplicate_key_is_named_short_and_printable() -> None:
    long_key = "k" * 65
    assert refusal(json.dumps({"k" * 64: 1}).replace("}", ', "' + "k" * 64 + '": 2}')) == "k" * 64 + ": duplicate field"
    assert refusal(f'{{"{long_key}": 1, "{long_key}": 2}}') == "k" * 64 + "...: duplicate field"
    # A lone surrogate as a key is named as far as UTF-8 can say it, not a crash.
    assert refusal(b'{"\\ud800": 1, "\\ud800": 2}') == "?: duplicate field"


def test_what_it_reads_is_plain_json() -> None:
    body = '{"prompt": "Caf\\u00e9 \u2603", "n": [1, 2.5, -0, true, null], "e": {}}'
    assert loads(body) == loads(body.encode()) == json.loads(body)
    assert strict_json.loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair of surrogates is one character
