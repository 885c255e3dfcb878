"""The compiled schema checks agree with jsonschema, the judge, on the specs' own schemas (lambdallm/schema_check.py).

A compiled check that accepted what the judge refuses would let an invalid body through, so the two are held to
the same answer on every example of every spec and on many near misses made from them: a field set to a value of
another type or at a bound, a field dropped, an unknown field added, at any depth.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from lambdallm.schema_check import SchemaCheck, draft4
from tests.contract.test_spec_examples import examples, resolved

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _cases() -> list[tuple[str, Any, dict[str, Any]]]:
    cases = []
    for name in ("openapi.yaml", "openai.yaml", "backend.yaml"):
        document = yaml.safe_load((SPECS / name).read_text())
        for where, example, schema in examples(document):
            if isinstance(example, (dict, list)):
                cases.append((f"{name}{where}", example, resolved(schema, document)))
    return cases


CASES = _cases()
CHECKS = {
    id(schema): (SchemaCheck(Draft4RequestValidator(schema)), SchemaCheck(Draft4ResponseValidator(schema)))
    for _, _, schema in CASES
}


def _bounds(node: Any) -> set[int | float]:
    """Every bound the schemas set (minimum, maxLength, maxItems, ...)."""
    found: set[int | float] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith(("min", "max")) and isinstance(value, (int, float)) and not isinstance(value, bool):
                found.add(value)
            found |= _bounds(value)
    elif isinstance(node, list):
        for value in node:
            found |= _bounds(value)
    return found


BOUNDS = sorted(_bounds([schema for _, _, schema in CASES]))
# Values at the edges of the specs' rules: each type, integers as floats, each bound and its neighbours as numbers
# and as lengths of text and of lists, blank text, and the words the specs' enums use.
EDGE_VALUES = (
    [None, True, False, 0.5, 1e309, "", " ", "\n", "user", "assistant", "tool", "system", "auto", "none",
     "required", "function", "json_schema", "text", {}, [{}], ["x"], {"type": "object"}]
    + [value for bound in BOUNDS for value in (bound - 1, bound, bound + 1, float(bound), bound + 0.5)]
    + [text for bound in BOUNDS if bound <= 200 for text in ("a" * int(bound), "a" * (int(bound) + 1))]
    + [["x"] * int(bound + 1) for bound in BOUNDS if bound <= 200]
)  # fmt: skip
EDGES = st.sampled_from(EDGE_VALUES)
JSON = st.recursive(
    EDGES | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(["prompt", "messages", "system", "max_tokens", "role", "content", "tools", "type", "name"])


def _containers(node: Any) -> list[Any]:
    found = [node] if isinstance(node, (dict, list)) else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found += _containers(child)
    return found


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """An example of the specs, with up to three changes anywhere in it."""
    _, example, schema = draw(st.sampled_from(CASES))
    instance = copy.deepcopy(example)
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(_containers(instance)))
        action = draw(st.sampled_from(["set", "drop", "add"]))
        if isinstance(target, dict):
            keys = sorted(target) or [draw(KEYS)]
            if action == "drop" and target:
                del target[draw(st.sampled_from(keys))]
            else:
                key = draw(st.sampled_from(keys)) if action == "set" else draw(KEYS | st.text(max_size=6))
                target[key] = copy.deepcopy(draw(JSON))  # never a drawn object itself: it is changed later
        elif action == "drop" and target:
            del target[draw(st.integers(0, len(target) - 1))]
        elif action == "set" and target:
            target[draw(st.integers(0, len(target) - 1))] = copy.deepcopy(draw(JSON))
        else:
            target.append(copy.deepcopy(target[0]) if target and draw(st.booleans()) else copy.deepcopy(draw(JSON)))
    return instance, schema


def _agree(check: SchemaCheck, instance: Any) -> None:
    judged = check.judge.is_valid(instance)
    assert check.accepts(instance) is judged
    assert (next(check.errors(instance), None) is None) is judged  # no errors exactly when valid


@pytest.mark.parametrize(("where", "example", "schema"), CASES, ids=[case[0] for case in CASES])
def test_every_example_is_judged_alike(where: str, example: Any, schema: dict[str, Any]) -> None:
    for check in CHECKS[id(schema)]:
        _agree(check, example)


def _field_values() -> dict[str, list[Any]]:
    """Up to three values that each field name has in the examples."""
    seen: dict[str, list[Any]] = {}
    for _, example, _ in CASES:
        for target in _containers(example):
            for name, value in target.items() if isinstance(target, dict) else ():
                if value not in seen.setdefault(name, []) and len(seen[name]) < 3:
                    seen[name].append(value)
    return seen


FIELD_VALUES = _field_values()


def _single_changes(example: Any) -> Any:
    """`example` with one change each: every field (and list item) set to every edge value, dropped; every object
    given a field it lacks with a value that field has in another example, and an unknown field."""
    for target in _containers(example):
        slots = list(target) if isinstance(target, dict) else range(len(target))
        for slot in slots:
            for value in EDGE_VALUES:
                kept, target[slot] = target[slot], copy.deepcopy(value)
                yield example
                target[slot] = kept
            kept = target.pop(slot)
            yield example
            target.insert(slot, kept) if isinstance(target, list) else target.update({slot: kept})
        if isinstance(target, dict):
            for name, values in [*FIELD_VALUES.items(), ("unknown", [1])]:
                for value in values if name not in target else ():
                    target[name] = copy.deepcopy(value)
                    yield example
                    del target[name]


@pytest.mark.parametrize(("where", "example", "schema"), CASES, ids=[case[0] for case in CASES])
def test_every_single_change_is_judged_alike(where: str, example: Any, schema: dict[str, Any]) -> None:
    for changed in _single_changes(copy.deepcopy(example)):
        for check in CHECKS[id(schema)]:
            assert check.compiled_accepts(changed) <= check.judge.is_valid(changed), changed


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_misses())
def test_near_misses_are_judged_alike(case: tuple[Any, dict[str, Any]]) -> None:
    instance, schema = case
    for check in CHECKS[id(schema)]:
        assert check.compiled
        assert check.compiled_accepts(instance) <= check.judge.is_valid(instance)  # never more than the judge
        _agree(check, instance)


def test_the_request_bodies_are_compiled() -> None:
    """Every body schema of the specs takes the fast path (one that did not would lose issue 28's speed quietly)."""
    assert CASES
    assert all(check.compiled for checks in CHECKS.values() for check in checks)


def test_nullable_admits_null_where_connexion_does() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "nullable": True}, "b": {"enum": ["x"]}}}
    check = SchemaCheck(Draft4RequestValidator(schema))
    assert check.compiled_accepts({"a": None})
    assert not check.compiled_accepts({"b": None})
    assert draft4({"enum": ["x"], "nullable": True}) == {"enum": ["x", None], "nullable": True}
    # Swagger 2's spelling, and a type that is a list of names: Connexion lets null pass both.
    for nullable in ({"type": "string", "x-nullable": True}, {"type": ["string", "integer"], "nullable": True}):
        assert SchemaCheck(Draft4RequestValidator(nullable)).compiled_accepts(None), nullable
    assert not SchemaCheck(Draft4RequestValidator({"type": "string", "x-nullable": False})).compiled_accepts(None)


# Every place draft 4 nests a schema: `inner` put there, and an instance with `value` where `inner` judges it.
NESTED = {
    "properties": (lambda inner: {"type": "object", "properties": {"a": inner}}, lambda value: {"a": value}),
    "items": (lambda inner: {"type": "array", "items": inner}, lambda value: [value]),
    "items, a list": (lambda inner: {"type": "array", "items": [inner]}, lambda value: [value]),
    "additionalItems": (lambda inner: {"type": "array", "items": [{}], "additionalItems": inner}, lambda v: [1, v]),
    "additionalProperties": (lambda inner: {"type": "object", "additionalProperties": inner}, lambda v: {"a": v}),
    "allOf": (lambda inner: {"allOf": [inner]}, lambda value: value),
    "anyOf": (lambda inner: {"anyOf": [inner]}, lambda value: value),
    "oneOf": (lambda inner: {"oneOf": [inner]}, lambda value: value),
}


@pytest.mark.parametrize("where", NESTED)
def test_a_nested_schema_is_read_as_connexion_reads_it(where: str) -> None:
    """At any depth, a nullable schema admits null in the compiled code too, and a keyword read differently
    leaves the whole schema to the judge (its compiled check would answer for the nested one)."""
    wrap, place = NESTED[where]
    nullable = SchemaCheck(Draft4RequestValidator(wrap({"type": "string", "nullable": True})))
    assert nullable.compiled_accepts(place(None))
    assert not nullable.accepts(place(1))
    formatted = SchemaCheck(Draft4RequestValidator(wrap({"type": "string", "format": "date-time"})))
    assert not formatted.compiled


def test_an_integer_field_refuses_a_whole_float_as_draft_4_does() -> None:
    """`max_tokens: 1.0` is not an integer to draft 4 (Connexion's judge) but is to draft 6 and later, which
    fastjsonschema reads a schema by unless told: the compiled code must be draft 4's, or it lets such a body in."""
    check = SchemaCheck(Draft4RequestValidator({"type": "object", "properties": {"max_tokens": {"type": "integer"}}}))
    assert check.compiled
    assert check.accepts({"max_tokens": 1})
    assert not check.accepts({"max_tokens": 1.0})
    assert check.first_error({"max_tokens": 1.0}) == "max_tokens: must be of type integer"


def test_a_check_leaves_the_body_it_judges_as_it_was() -> None:
    """A schema's `default` is not written into the instance: the judge does not, so neither does the compiled code
    (a body would otherwise reach the handler with fields the client did not send, on the fast path alone)."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    check = SchemaCheck(Draft4RequestValidator(schema))
    body: dict[str, Any] = {}
    assert check.compiled
    assert check.accepts(body)
    assert check.first_error(body) is None
    assert body == {}


@pytest.mark.parametrize("keyword", ["format", "writeOnly"])
def test_a_keyword_read_differently_is_left_to_the_judge(keyword: str) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", keyword: "date-time"}}}
    check = SchemaCheck(Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
    assert not check.compiled
    assert check.accepts({"a": "2026-12-02T05:00:00Z"})
    assert check.first_error({"a": 1}) == "a: must be of type string"


def test_a_schema_that_admits_null_judges_every_other_instance_on_its_own() -> None:
    schema = {"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}}
    check = SchemaCheck(Draft4RequestValidator(schema))
    assert check.accepts(None)
    assert not check.accepts({"a": 1})
    assert check.first_error({"a": 1}) == "a: must be of type string"
