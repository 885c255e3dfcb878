"""JSON Schemas to grammars, and a model's tool-call text back to Converse blocks, without a model.

The bounded-number rules are checked exhaustively over a range of values: each rule is turned into the regular
expression it spells (the alternatives use only literals and digit classes), which must accept exactly the numbers
within the bounds. The call reader is fed every split of a text and must always give the whole answer's blocks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lambdallm.local_cloud.call_reader import CallReader, content_blocks
from lambdallm.local_cloud.grammar import (
    SchemaRefused,
    _bounded_number,
    _integers,
    json_grammar,
    tool_call_grammar,
)


def as_regex(rule: str) -> re.Pattern[str]:
    """A rule made of quoted literals, digit classes, `*`, `?` and `|` as the regular expression it spells."""
    return re.compile("^(?:" + rule.removesuffix(" space").replace('"', "").replace(" ", "") + ")$")


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(0, 0), (0, 9), (5, 123), (-17, 4), (-1000, -3), (None, 5), (None, -12), (7, None), (123, None), (99, 101)],
)
def test_integer_bounds_allow_exactly_the_integers_within_them(lo: int | None, hi: int | None) -> None:
    allowed = as_regex(" | ".join(f"({option})" for option in _integers(lo, hi)))
    for n in range(-1300, 1300):
        assert bool(allowed.match(str(n))) == ((lo is None or n >= lo) and (hi is None or n <= hi)), n
    for spelling in ("-0", "01", "+1", "1.0"):
        assert not allowed.match(spelling)


@pytest.mark.parametrize(
    "bounds",
    [
        {"minimum": 0, "maximum": 1},
        {"minimum": 0, "exclusiveMaximum": 1},
        {"minimum": -1.5, "maximum": 2.5},
        {"exclusiveMinimum": 0, "maximum": 10},
        {"minimum": -10, "maximum": -2},
        {"maximum": -0.5},
        {"minimum": -3, "exclusiveMaximum": 0},
    ],
)
def test_number_bounds_allow_only_numbers_within_them(bounds: dict[str, float]) -> None:
    allowed = as_regex(_bounded_number({"type": "number", **bounds}, integer=False))
    lo = bounds.get("minimum", bounds.get("exclusiveMinimum"))
    hi = bounds.get("maximum", bounds.get("exclusiveMaximum"))
    matched = [text for text in [f"{x / 100:.2f}" for x in range(-2000, 2000)] if allowed.match(text)]
    assert matched, "a bounded number allows some values"
    for text in matched:
        value = float(text)
        assert lo is None or (value > lo if "exclusiveMinimum" in bounds else value >= lo), text
        assert hi is None or (value < hi if "exclusiveMaximum" in bounds else value <= hi), text


def test_a_bounded_integer_property_gets_its_own_rule() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 12}}}
    gbnf = json_grammar(schema).gbnf
    assert 'n ::= (([1-9]) | ("1" [0-2])) space' in gbnf


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ([1, 2], "must be a JSON object"),
        ({"type": "strin"}, "not a valid JSON Schema"),
        ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer lies within"),
    ],
)
def test_a_schema_no_grammar_can_hold_is_refused_with_its_cause(schema: Any, says: str) -> None:
    with pytest.raises(SchemaRefused, match=says):
        json_grammar(schema)


def test_a_tool_grammar_is_lazy_only_for_auto() -> None:
    tools = {"add": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}
    forced, auto = tool_call_grammar(tools), tool_call_grammar(tools, lazy=True)
    assert forced.triggers == () and auto.triggers == ("<tool_call>",)
    assert forced.gbnf.startswith('root ::= "<tool_call>" space call "</tool_call>"')
    assert '"\\"add\\""' in forced.gbnf  # the name is a constant of the grammar


ANSWER = 'Let me add. <tool_call> {"name": "add", "arguments": {"a": {"b": [1, "}"]}, "c": 2}} </tool_call>'


def test_an_answer_with_a_call_becomes_a_text_and_a_tool_use_block() -> None:
    blocks = list(content_blocks(ANSWER))
    assert blocks[0] == {"text": "Let me add. "}
    call = blocks[1]["toolUse"]
    assert (call["name"], call["input"]) == ("add", {"a": {"b": [1, "}"]}, "c": 2})
    assert re.fullmatch(r"tooluse_[A-Za-z0-9]{22}", call["toolUseId"])


def read_in_pieces(text: str, size: int) -> list[tuple[str, ...]]:
    """A CallReader's events for `text` fed `size` characters at a time, then finished."""
    reader = CallReader()
    events: list[tuple[str, ...]] = []
    for start in range(0, len(text), size):
        events += reader.feed(text[start : start + size])
    return events + reader.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_streamed_pieces_add_up_to_the_whole_answer_however_the_text_is_split(size: int) -> None:
    events = read_in_pieces(ANSWER, size)
    text = "".join(e[1] for e in events if e[0] == "text")
    starts = [e for e in events if e[0] == "start"]
    arguments = "".join(e[1] for e in events if e[0] == "input")
    assert text == "Let me add. "
    assert [e[2] for e in starts] == ["add"] and events[-1] == ("stop",)
    assert json.loads(arguments) == {"a": {"b": [1, "}"]}, "c": 2}


# A string may hold what looks like the call's end (Gemma 3 270M once wrote `"}}</tool_call>` inside one).
TRICKY_ARGUMENTS = {"items": [",", "}}</tool_call>", 'a"}'], "urgent": True}
TRICKY = f'<tool_call>{{"name": "record", "arguments": {json.dumps(TRICKY_ARGUMENTS)}}}</tool_call>'


@pytest.mark.parametrize("size", range(1, 16))
def test_a_string_that_holds_the_closing_tag_does_not_end_the_call(size: int) -> None:
    events = read_in_pieces(TRICKY, size)
    assert [e[0] for e in events if e[0] != "input"] == ["start", "stop"]
    assert json.loads("".join(e[1] for e in events if e[0] == "input")) == TRICKY_ARGUMENTS
    (block,) = content_blocks(TRICKY)
    assert block["toolUse"]["input"] == TRICKY_ARGUMENTS


def test_a_call_cut_short_ends_with_what_it_had_and_text_after_a_call_is_text() -> None:
    reader = CallReader()
    events = reader.feed('<tool_call>{"name": "add", "arguments": {"a": 1}} </tool_call> done')
    assert [e[0] for e in events] == ["start", "input", "stop", "text"] and events[-1] == ("text", " done")
    assert events[1] == ("input", '{"a": 1}') and reader.finish() == []
    events = reader.feed('<tool_call>{"name": "add", "arguments": {"a": "</tool_call>')
    assert events[-1] == ("input", '{"a": "</tool_call>') and reader.finish() == [("stop",)]


def test_text_that_only_looks_like_a_call_opening_is_released_as_text() -> None:
    reader = CallReader()
    assert reader.feed("a <tool") == [("text", "a ")]
    assert reader.feed("box> b") == [("text", "<toolbox> b")]
    assert reader.finish() == []
